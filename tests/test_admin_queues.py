"""Background jobs in the admin, on a real RQ worker: failures listed without their traceback, retried."""

from __future__ import annotations

import html
from datetime import timedelta

from flask import Flask
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from infra import queues
from models.admin import AuditEntry, Role
from tests.conftest import run_worker
from tests.test_admin_access import token
from tests.test_admin_referrals import signed_in
from web.admin.queues import ERROR_CHARS, last_line

FAILING = "workers.deadlines.check_deadlines"
SECRET_ARG = "1999-12-31T23:59:59"  # stands for an argument that must never be shown


def failed_job(redis: Redis, database_url: str) -> str:
    """A real job that fails on a real worker: the deadline check given a date it cannot read."""
    job = Queue(queues.DEFAULT, connection=redis).enqueue(FAILING, now="not-a-date")
    run_worker(database_url)
    assert job.id in FailedJobRegistry(queue=Queue(queues.DEFAULT, connection=redis))
    return job.id


def section(page: str, title: str) -> str:
    """The part of the page under a heading such as "Failed (1)"."""
    start = page.index(title)
    end = page.find("<h3>", start + 1)
    return page[start : end if end != -1 else None]


def test_failed_scheduled_and_waiting_jobs_are_listed_without_arguments_or_traceback(
    app: Flask, db: Session, redis: Redis, database_url: str
) -> None:
    job_id = failed_job(redis, database_url)
    sms = Queue(queues.SMS, connection=redis)
    sms.enqueue("workers.sms.send_sms", 424242, job_id="sms-424242")
    sms.enqueue_in(timedelta(hours=1), FAILING, now=SECRET_ARG)
    client = signed_in(app, db, Role.ADMIN)
    page = client.get("/admin/queues")
    assert page.status_code == 200
    text = html.unescape(page.text)
    failed = section(text, "En échec (1)")
    assert job_id in failed and FAILING in failed
    assert "ValueError: Invalid isoformat string" in failed and "Relancer" in failed
    assert "Traceback" not in text and 'File "' not in text
    assert "sms-424242" in section(text, "En attente (1)") and "workers.sms.send_sms" in text
    assert FAILING in section(text, "Programmées (1)")
    assert SECRET_ARG not in text and "424242," not in text


def test_an_admin_retries_a_failed_job_and_the_worker_runs_it_again(
    app: Flask, db: Session, redis: Redis, database_url: str
) -> None:
    job_id = failed_job(redis, database_url)
    client = signed_in(app, db, Role.ADMIN)
    response = client.post(
        f"/admin/queues/{queues.DEFAULT}/failed/{job_id}/retry",
        data={"csrf_token": token(client, "/admin/queues")},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/admin/queues?done=retried"
    assert job_id in Queue(queues.DEFAULT, connection=redis).get_job_ids()
    assert job_id not in FailedJobRegistry(queue=Queue(queues.DEFAULT, connection=redis))
    text = html.unescape(client.get(response.headers["Location"]).text)
    assert "Tâche remise dans sa file." in text and job_id in section(text, "En attente (1)")
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "job.retry"))
    assert (entry.object_type, entry.object_id) == ("job", job_id)
    assert entry.detail == {"queue": queues.DEFAULT, "function": FAILING}

    run_worker(database_url)  # it fails again (its argument is still bad), with two attempts now
    failed = section(html.unescape(client.get("/admin/queues").text), "En échec (1)")
    assert job_id in failed and '<td class="num">2</td>' in failed
    # A job that is not (or no longer) failed cannot be retried; nor can one of an unknown queue.
    csrf = token(client, "/admin/queues")
    assert (
        client.post(
            f"/admin/queues/{queues.SMS}/failed/{job_id}/retry", data={"csrf_token": csrf}
        ).status_code
        == 404
    )
    assert (
        client.post(f"/admin/queues/nope/failed/{job_id}/retry", data={"csrf_token": csrf}).status_code == 404
    )


def test_coordinators_read_without_retrying_and_others_are_refused(
    app: Flask, db: Session, redis: Redis, database_url: str
) -> None:
    job_id = failed_job(redis, database_url)
    coordinator = signed_in(app, db, Role.COORDINATOR)
    page = html.unescape(coordinator.get("/admin/queues").text)
    assert job_id in page and "Relancer" not in page
    refused = coordinator.post(
        f"/admin/queues/{queues.DEFAULT}/failed/{job_id}/retry", data={"csrf_token": token(coordinator)}
    )
    assert refused.status_code == 403
    assert job_id in FailedJobRegistry(queue=Queue(queues.DEFAULT, connection=redis))
    assert signed_in(app, db, Role.VIEWER).get("/admin/queues").status_code == 403


def test_only_the_exceptions_last_line_is_kept_and_it_is_cut_short() -> None:
    trace = (
        'Traceback (most recent call last):\n  File "x.py", line 1\n    boom()\nRuntimeError: ' + "x" * 500
    )
    line = last_line(trace)
    assert line.startswith("RuntimeError: ") and len(line) == ERROR_CHARS and line.endswith("…")
    assert last_line(None) == last_line("") == ""
