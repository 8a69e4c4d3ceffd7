"""One outbox object queues SMS, with the retry policy and time-out of the settings, after commit."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from rq.job import Job

from app import create_app
from infra.keys import sms_job_id
from models import OutboundSms
from tests.conftest import app_settings
from web.context import sira


def test_the_apps_outbox_queues_committed_rows_with_the_settings_policy(
    database_url: str, redis: Redis
) -> None:
    app: Flask = create_app(
        app_settings(database_url, sms_retry_intervals="7,11", sms_job_timeout_seconds="45")
    )
    with sira(app).sessions() as session:
        row = OutboundSms(to_e164="+22370000101", to_hash="h", body="x", purpose="test")
        session.add(row)
        session.flush()
        assert sira(app).outbox.send_after_commit(session, [row.id])
        sms_id = row.id
    with sira(app).sessions() as other:  # committed before the job could look for it
        assert other.get(OutboundSms, sms_id) is not None
    job = Job.fetch(sms_job_id(sms_id), connection=redis)
    assert (job.func_name, job.args, job.timeout) == ("workers.sms.send_sms", (sms_id,), 45)
    assert (job.retries_left, job.retry_intervals) == (2, [7, 11])


def test_nothing_to_queue_touches_no_queue(app: Flask, redis: Redis) -> None:
    assert sira(app).outbox.queue([])
    assert not redis.keys("rq:job:*")
