"""Background jobs in the admin: what waits, runs, is scheduled or failed in each RQ queue.

Only what helps to decide is shown: the function, when it was queued, how many times it ran
and, for a failure, the last line of the exception, cut short. Never the job's arguments nor
its traceback: they sit in Redis for days and a traceback can quote anything. Coordinators
read; admins may put a failed job back in its queue (audited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import abort, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from redis import Redis
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import BaseRegistry, FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.results import Result

from infra import queues as names
from infra.balance import cached_balance
from models.admin import Role, audit
from models.base import utcnow
from web.admin.access import STAFF, bp, current_user, require
from web.admin.i18n import _
from web.admin.routes import HEALTH, route_rows
from web.context import sira
from web.db import get_session

HEARTBEAT_GRACE = 60  # seconds past RQ's worker TTL before a quiet worker is flagged
SHOWN = 50  # per list: enough to see what is wrong, light on a slow link
ERROR_CHARS = 160
DONE = {"retried": _("Job put back in its queue.")}
KINDS = {
    "pending": _("Waiting"),
    "started": _("Running"),
    "scheduled": _("Scheduled"),
    "failed": _("Failed"),
}


@dataclass(frozen=True)
class JobRow:
    id: str
    function: str
    enqueued_at: datetime | None
    attempts: int
    error: str


@dataclass(frozen=True)
class JobList:
    kind: str
    count: int
    jobs: list[JobRow]


def last_line(text: str | None) -> str:
    """The exception's own line ("ValueError: ..."), cut short; the traceback above it is dropped."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= ERROR_CHARS else line[: ERROR_CHARS - 1] + "…"


def job_row(job: Job, failed: bool) -> JobRow:
    try:
        function = job.func_name or "?"
    except Exception:  # an unreadable payload must not hide the other jobs
        function = "?"
    error = ""
    if failed:
        latest = job.latest_result()
        error = last_line(latest.exc_string if latest else None)
    return JobRow(job.id, function, job.enqueued_at, Result.count(job), error)


def rows(redis: Redis, ids: list[str], failed: bool = False) -> list[JobRow]:
    return [job_row(j, failed) for j in Job.fetch_many(ids, connection=redis) if j is not None]


def registry_list(kind: str, registry: BaseRegistry, redis: Redis) -> JobList:
    ids = registry.get_job_ids(0, SHOWN - 1, desc=True)
    return JobList(kind, registry.count, rows(redis, ids, failed=kind == "failed"))


@dataclass(frozen=True)
class WorkerRow:
    """A worker as RQ registers it: its name, queues, state and last sign of life."""

    name: str
    queues: list[str]
    state: str
    last_heartbeat: datetime | None
    silent: bool  # no heartbeat for longer than RQ waits between two


def workers(redis: Redis, now: datetime) -> list[WorkerRow]:
    """Every registered worker; one whose heartbeat is older than RQ's time-to-live is likely dead
    (its key has not expired yet), which is what an admin wants to see at a glance."""
    found = []
    for worker in sorted(Worker.all(connection=redis), key=lambda w: w.name):
        beat = worker.last_heartbeat.replace(tzinfo=UTC) if worker.last_heartbeat else None
        silent = beat is None or (now - beat).total_seconds() > worker.worker_ttl + HEARTBEAT_GRACE
        found.append(WorkerRow(worker.name, worker.queue_names(), str(worker.get_state()), beat, silent))
    return found


def queue_lists(name: str, redis: Redis) -> list[JobList]:
    queue = Queue(name, connection=redis)
    return [
        JobList("pending", queue.count, rows(redis, queue.get_job_ids(0, SHOWN - 1))),
        registry_list("started", StartedJobRegistry(queue=queue), redis),
        registry_list("scheduled", ScheduledJobRegistry(queue=queue), redis),
        registry_list("failed", FailedJobRegistry(queue=queue), redis),
    ]


@bp.get("/queues")
@require(*STAFF)
def job_queues() -> ResponseReturnValue:
    redis = sira().redis
    # The Orange bundle, only where Orange sends the SMS; read from Redis, never from Orange here.
    settings = sira().settings
    orange = any(route.kind == "orange" for route in settings.routing.routes)
    return render_template(
        "admin/queues.html", queues={name: queue_lists(name, redis) for name in names.ALL}, kinds=KINDS,
        orange=orange, balance=cached_balance(redis) if orange else None,
        routes=route_rows(settings, redis, get_session()), route_health=HEALTH,
        workers=workers(redis, utcnow()), now=utcnow(),
        can_retry=current_user().role == Role.ADMIN, shown=SHOWN, done=DONE.get(request.args.get("done", "")),
    )  # fmt: skip


@bp.post("/queues/<name>/failed/<job_id>/retry")
@require(*STAFF)
def job_retry(name: str, job_id: str) -> ResponseReturnValue:
    """Put a failed job back at the end of its queue; a worker runs it again as it was."""
    user = current_user()
    if user.role != Role.ADMIN:
        abort(403)
    if name not in names.ALL:
        abort(404)
    redis = sira().redis
    registry = FailedJobRegistry(queue=Queue(name, connection=redis))
    job_id = job_id[:100]
    if job_id not in registry:
        abort(404)
    try:
        job = registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError):
        abort(409)
    session = get_session()
    audit(
        session, user.id, "job.retry", "job", job_id[:40], queue=name, function=job_row(job, False).function
    )
    session.commit()
    return redirect(url_for("admin.job_queues", done="retried"))
