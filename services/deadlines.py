"""Deadlines on referrals sent to a provider: a reminder after a day, expiry after two.

Each deadline acts once, even with several workers: a reminder and an expiry are each claimed
by a compare-and-set UPDATE before anything is written, and committed one referral at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flows.sms import SmsTexts
from models.referral import Referral, Status
from services import lifecycle

BATCH = 200  # referrals each kind of deadline takes per run; the next run takes the rest


@dataclass
class Done:
    """What one run did: the counts it reports and the SMS it wrote."""

    reminded: int = 0
    expired: int = 0
    sms_ids: list[int] = field(default_factory=list)


def run(session: Session, moment: datetime, reminder_after_hours: int, expire_after_hours: int,
        texts: SmsTexts) -> Done:  # fmt: skip
    """Remind the providers that have not answered, expire and re-route the long-silent ones."""
    done = Done()
    expire_before = moment - timedelta(hours=expire_after_hours)
    remind(session, moment, moment - timedelta(hours=reminder_after_hours), expire_before, texts, done)
    expire(session, expire_before, texts, done)
    return done


def remind(session: Session, moment: datetime, remind_before: datetime, expire_before: datetime,
           texts: SmsTexts, done: Done) -> None:  # fmt: skip
    # Not one already past its expiry (no run came in between): it expires instead, and a
    # reminder to answer a referral taken away that very moment would mislead.
    due = select(Referral.id).where(
        Referral.status == Status.SENT,
        Referral.assigned_at <= remind_before,
        Referral.assigned_at > expire_before,
        Referral.reminded_at.is_(None),
    )
    for referral_id in session.scalars(due.limit(BATCH)).all():
        claimed = session.execute(
            update(Referral)
            .where(Referral.id == referral_id, Referral.reminded_at.is_(None), Referral.status == Status.SENT)
            .values(reminded_at=moment)
            .execution_options(synchronize_session=False)  # the referral is read again below
        ).rowcount
        if claimed:
            done.sms_ids += lifecycle.remind(session, session.get(Referral, referral_id), texts)
            done.reminded += 1
        session.commit()


def expire(session: Session, expire_before: datetime, texts: SmsTexts, done: Done) -> None:
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
            done.sms_ids += lifecycle.expire(session, referral, texts)
            done.expired += 1
        session.commit()
