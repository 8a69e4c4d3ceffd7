"""`GET /metrics`: what Prometheus scrapes, served only to the networks of METRICS_ALLOWED_NETWORKS.

The events (USSD steps, sends, deadlines, errors) are counted where they happen (infra/metrics.py);
what is a state rather than an event is read here, at scrape time, so that no process has to keep
it up to date: the queues' depth and oldest job, the outbox's backlog by status, the spool, the
transcript buffer. A request from elsewhere gets the 404 of a route that does not exist: the
public, even through the callbacks' front, learns nothing of the service's figures: a request
forwarded by a proxy the app was not told to trust (X-Forwarded-For with TRUSTED_PROXIES=0) is
refused too, since its address would be the proxy's own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, request
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from infra import keys, queues
from infra.metrics import exposition
from infra.spool import Spool
from models.base import as_utc
from models.messaging import OutboundSms, SmsStatus
from web.callbacks import allowed
from web.context import sira

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

# Outbox rows that still have to leave: their count and oldest age are the backlog.
BACKLOG = (SmsStatus.PENDING, SmsStatus.SENDING, SmsStatus.HELD)


@bp.get("/metrics")
def metrics() -> Response:
    app = sira()
    settings = app.settings
    # Through a proxy that the app does not trust, the address is the proxy's (often loopback):
    # a forwarded request is the public's until TRUSTED_PROXIES says how to read it.
    forwarded = "X-Forwarded-For" in request.headers and not settings.trusted_proxies
    if forwarded or not allowed(request.remote_addr, settings.metrics_networks):
        abort(404)
    state = StateCollector(app.redis, app.sessions, app.spool)
    return Response(exposition(state), mimetype=CONTENT_TYPE_LATEST)


class StateCollector(Collector):
    """Figures read at scrape time; a service that does not answer is reported down, not a 500."""

    def __init__(self, redis: Redis, sessions: sessionmaker[Session], spool: Spool) -> None:
        self.redis, self.sessions, self.spool = redis, sessions, spool

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        yield from self._queues(now)
        yield from self._outbox(now)
        yield GaugeMetricFamily("sira_spool_records", "Callbacks waiting in the spool for the database",
                                value=len(self.spool.pending()))  # fmt: skip

    def _queues(self, now: datetime) -> Iterator[Metric]:
        depth = GaugeMetricFamily("sira_queue_jobs", "Jobs waiting in an RQ queue", labels=["queue"])
        oldest = GaugeMetricFamily(
            "sira_queue_oldest_job_seconds", "Age of the job at the head of an RQ queue", labels=["queue"]
        )
        failed = GaugeMetricFamily(
            "sira_queue_failed_jobs", "Jobs in a queue's failed registry", labels=["queue"]
        )
        up = 1
        try:
            for name in queues.ALL:
                queue = Queue(name, connection=self.redis)
                depth.add_metric([name], queue.count)
                failed.add_metric([name], queue.failed_job_registry.count)
                head = queue.get_job_ids(0, 1)
                job = Job.fetch(head[0], connection=self.redis) if head else None
                age = (now - as_utc(job.enqueued_at)).total_seconds() if job and job.enqueued_at else 0.0
                oldest.add_metric([name], max(age, 0.0))
            buffered = self.redis.llen(keys.STEP_BUFFER)
        except (RedisError, NoSuchJobError) as exc:  # NoSuchJobError: a job gone between listing and fetching
            log.warning("metrics: redis unavailable (%s)", type(exc).__name__)
            up, buffered = 0, 0
        yield from (depth, oldest, failed)
        yield GaugeMetricFamily("sira_transcript_buffer_steps", "USSD steps waiting to be written to the database",
                                value=buffered)  # fmt: skip
        yield GaugeMetricFamily("sira_redis_up", "Whether Redis answered this scrape", value=up)

    def _outbox(self, now: datetime) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "sira_outbox_messages",
            "Outbox messages not yet taken by the gateway, by status",
            labels=["status"],
        )
        oldest = GaugeMetricFamily(
            "sira_outbox_oldest_seconds", "Age of the oldest message still in the outbox"
        )
        up = 1
        try:
            with self.sessions() as session:
                counts = dict(
                    session.execute(
                        select(OutboundSms.status, func.count())
                        .where(OutboundSms.status.in_([s.value for s in BACKLOG]))
                        .group_by(OutboundSms.status)
                    ).all()
                )
                first = session.scalar(
                    select(func.min(OutboundSms.created_at)).where(
                        OutboundSms.status.in_([s.value for s in BACKLOG])
                    )
                )
        except SQLAlchemyError as exc:
            log.warning("metrics: database unavailable (%s)", type(exc).__name__)
            up, counts, first = 0, {}, None
        for status in BACKLOG:
            backlog.add_metric([status.value], counts.get(status.value, 0))
        oldest.add_metric([], max((now - as_utc(first)).total_seconds(), 0.0) if first else 0.0)
        yield from (backlog, oldest)
        yield GaugeMetricFamily("sira_database_up", "Whether the database answered this scrape", value=up)
