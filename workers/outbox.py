"""The outbox sweeper: queue every message still waiting, whatever happened to its first job.

It finds work in the database, not in Redis, so a message committed while Redis was down, or
whose job died with its worker, is sent once Redis is back. Redis is asked only whether a new
message's job is there at all: one that is not (Redis was down, or restarted empty) is queued
at once rather than after the grace given to a job on its way.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis
from rq.job import Job
from sqlalchemy import select, update

from infra.queues import Outbox, sms_job_id
from models.messaging import OutboundSms, SmsStatus
from workers.context import cron_clock, job_context

log = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(hours=24)
BATCH = 500


def sweep_outbox(now: str | None = None, redis: Redis | None = None) -> dict[str, int]:
    """RQ job (run by the worker's cron): reclaim stuck sends, give up on old ones, queue the rest.

    `now` (ISO 8601) lets a test or an operator sweep against a controlled clock.
    """
    ctx = job_context()
    moment = cron_clock(now)
    # A claim older than the lease belongs to a job that died (its time-out is shorter).
    lease = timedelta(seconds=ctx.settings.sms_claim_lease_seconds)
    with ctx.sessions() as session:
        reclaimed = session.execute(
            update(OutboundSms)
            .where(OutboundSms.status == SmsStatus.SENDING, OutboundSms.claimed_at < moment - lease)
            .values(status=SmsStatus.PENDING, claimed_at=None, next_attempt_at=moment)
        ).rowcount
        dead = session.execute(
            update(OutboundSms)
            .where(
                SmsStatus.to_send_clause(),
                OutboundSms.created_at < moment - GIVE_UP_AFTER,
                OutboundSms.attempts > 0,  # tried and failed: not a message an admin just retried
            )
            .values(status=SmsStatus.DEAD, last_error="gave up after retrying for 24 hours")
        ).rowcount
        session.commit()
        due = list(
            session.scalars(
                select(OutboundSms.id)
                .where(SmsStatus.to_send_clause(), OutboundSms.next_attempt_at <= moment)
                .order_by(OutboundSms.id)
                .limit(BATCH)
            )
        )
        fresh = list(
            session.scalars(
                select(OutboundSms.id)
                .where(
                    OutboundSms.status == SmsStatus.PENDING,
                    OutboundSms.attempts == 0,
                    OutboundSms.next_attempt_at > moment,
                )
                .order_by(OutboundSms.id)
                .limit(BATCH)
            )
        )
    if redis is None:
        from rq import get_current_job

        redis = get_current_job().connection
    lost = without_job(redis, fresh)
    due += lost
    Outbox.from_settings(redis, ctx.settings).queue(due)
    counts = {"queued": len(due), "lost": len(lost), "reclaimed": reclaimed, "dead": dead}
    if any(counts.values()):
        log.info("outbox sweep: %s", counts)
    return counts


def without_job(redis: Redis, sms_ids: list[int]) -> list[int]:
    """The new messages whose send job Redis does not hold: it was down when they were written, or
    restarted empty since. They need not wait for the grace that protects a job still on its way.
    """
    if not sms_ids:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for sms_id in sms_ids:
            pipe.exists(Job.key_for(sms_job_id(sms_id)))
        found = pipe.execute()
    return [sms_id for sms_id, exists in zip(sms_ids, found, strict=True) if not exists]
