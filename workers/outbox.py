"""The outbox sweeper: queue every message still waiting, whatever happened to its first job.

It finds work in the database, never in Redis, so a message committed while Redis was down, or
whose job died with its worker, is sent once Redis is back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from redis import Redis
from sqlalchemy import select, update

from models.base import as_utc, utcnow
from models.messaging import TO_SEND, OutboundSms, SmsStatus
from workers.context import job_context
from workers.queues import enqueue_sms

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(hours=24)
BATCH = 500


def sweep_outbox(now: str | None = None, redis: Redis | None = None) -> dict[str, int]:
    """RQ job (run by the worker's cron): reclaim stuck sends, give up on old ones, queue the rest.

    `now` (ISO 8601) lets a test or an operator sweep against a controlled clock.
    """
    ctx = job_context()
    now = as_utc(datetime.fromisoformat(now)) if now else utcnow()
    with ctx.sessions() as session:
        reclaimed = session.execute(
            update(OutboundSms)
            .where(OutboundSms.status == SmsStatus.SENDING, OutboundSms.claimed_at < now - CLAIM_LEASE)
            .values(status=SmsStatus.PENDING, claimed_at=None)
        ).rowcount
        dead = session.execute(
            update(OutboundSms)
            .where(
                OutboundSms.status.in_([s.value for s in TO_SEND]),
                OutboundSms.created_at < now - GIVE_UP_AFTER,
            )
            .values(status=SmsStatus.DEAD, last_error="gave up after retrying for 24 hours")
        ).rowcount
        session.commit()
        due = list(
            session.scalars(
                select(OutboundSms.id)
                .where(OutboundSms.status.in_([s.value for s in TO_SEND]), OutboundSms.next_attempt_at <= now)
                .order_by(OutboundSms.id)
                .limit(BATCH)
            )
        )
    if redis is None:
        from rq import get_current_job

        redis = get_current_job().connection
    enqueue_sms(redis, due, ctx.settings.sms_retry_intervals)
    counts = {"queued": len(due), "reclaimed": reclaimed, "dead": dead}
    if any(counts.values()):
        log.info("outbox sweep: %s", counts)
    return counts
