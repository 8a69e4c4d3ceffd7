"""Deadlines on referrals sent to a provider: a reminder after a day, expiry after two.

Run by the worker's cron; `now` may be given (ISO 8601) so that a test or an operator can run
it against a controlled clock. Each deadline acts once, even with several workers: a reminder
and an expiry are each claimed by a compare-and-set UPDATE before anything is sent.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rq import get_current_job
from sqlalchemy import select, update

from infra.metrics import DEADLINE_ACTIONS
from infra.queues import Outbox
from models.base import as_utc, utcnow
from models.referral import Referral, Status
from services import lifecycle
from workers.context import job_context

log = logging.getLogger(__name__)
BATCH = 200


def check_deadlines(now: str | None = None) -> dict[str, int]:
    """RQ job: remind providers that have not answered, expire and re-route the long-silent ones."""
    ctx = job_context()
    moment = as_utc(datetime.fromisoformat(now)) if now else utcnow()
    expire_before = moment - timedelta(hours=ctx.settings.expire_after_hours)
    remind_before = moment - timedelta(hours=ctx.settings.reminder_after_hours)
    sms_ids: list[int] = []
    counts = {"expired": 0, "reminded": 0}
    with ctx.sessions() as session:
        # Not one already past its expiry (no run came in between): it expires below instead,
        # and a reminder to answer a referral taken away that very moment would mislead.
        due = select(Referral.id).where(
            Referral.status == Status.SENT,
            Referral.assigned_at <= remind_before,
            Referral.assigned_at > expire_before,
            Referral.reminded_at.is_(None),
        )
        for referral_id in session.scalars(due.limit(BATCH)).all():
            claimed = session.execute(
                update(Referral)
                .where(
                    Referral.id == referral_id, Referral.reminded_at.is_(None), Referral.status == Status.SENT
                )
                .values(reminded_at=moment)
                .execution_options(synchronize_session=False)  # the referral is read again below
            ).rowcount
            if claimed:
                sms_ids += lifecycle.remind(session, session.get(Referral, referral_id), ctx.texts)
                counts["reminded"] += 1
            session.commit()
        due = select(Referral.id).where(Referral.status == Status.SENT, Referral.assigned_at <= expire_before)
        for referral_id in session.scalars(due.limit(BATCH)).all():
            claimed = session.execute(
                update(Referral)
                .where(
                    Referral.id == referral_id,
                    Referral.status == Status.SENT,
                    Referral.assigned_at <= expire_before,
                )
                .values(status=Status.EXPIRED)
                .execution_options(synchronize_session=False)  # refreshed below
            ).rowcount
            if claimed:
                referral = session.get(Referral, referral_id)
                session.refresh(referral)
                sms_ids += lifecycle.expire(session, referral, ctx.texts)
                counts["expired"] += 1
            session.commit()
    for action, n in counts.items():
        DEADLINE_ACTIONS.labels(action).inc(n)
    job = get_current_job()
    if job is not None:
        Outbox.from_settings(job.connection, ctx.settings).queue(sms_ids)
    if any(counts.values()):  # said only when it did something: the cron runs it every minute
        log.info("deadlines: %s", counts)
    return counts
