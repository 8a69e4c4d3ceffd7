"""Follow-ups of outcomes: asking returnees, days after a referral closed, whether they are
still served, and closing the questions nobody answered.

Each question is claimed by inserting its row (unique per referral and day) before its SMS is
written, so with several workers running the cron each one goes once. A returnee who sent STOP,
withdrew consent or was erased (their referrals keep no returnee) is never asked; a closing whose answer window
has already passed (a worker down for weeks, or the setting just turned on) is not asked late.
The caller commits and queues the SMS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, select, update
from sqlalchemy.orm import Session

from flows import sms as texts_
from flows.sms import SmsTexts
from models.db import insert_ignore
from models.follow_up import FollowUp, FollowUpStatus
from models.referral import Referral, ReferralEvent, Status
from models.returnee import Returnee
from services.lifecycle import notify_returnee

BATCH = 200
PURPOSE = "returnee_follow_up"


@dataclass
class Done:
    """What one run did: the counts it reports and the SMS it wrote."""

    asked: int = 0
    no_answer: int = 0
    sms_ids: list[int] = field(default_factory=list)


def ask_due(
    session: Session, moment: datetime, days: int, answer_days: int, texts: SmsTexts, done: Done
) -> None:
    """Ask the question `days` after each closing that is due and still within its answer window."""
    due_before = moment - timedelta(days=days)
    too_late = due_before - timedelta(days=answer_days)
    asked = exists(select(FollowUp.id).where(FollowUp.referral_id == Referral.id, FollowUp.day == days))
    due = (
        select(Referral.id, Referral.code, Referral.returnee_id)
        .join(
            ReferralEvent,
            and_(ReferralEvent.referral_id == Referral.id, ReferralEvent.to_status == Status.CLOSED),
        )
        .join(Returnee, Returnee.id == Referral.returnee_id)
        .where(
            ReferralEvent.at <= due_before,
            ReferralEvent.at > too_late,
            Returnee.opted_out_at.is_(None),
            Returnee.consent_version.is_not(None),  # consent withdrawn: not contacted about it any more
            Returnee.phone_e164.is_not(None),
            ~asked,
        )
        .order_by(ReferralEvent.at)
        .limit(BATCH)
    )
    for referral_id, code, returnee_id in session.execute(due).all():
        claimed = insert_ignore(
            session, FollowUp, referral_id=referral_id, returnee_id=returnee_id, day=days,
            status=FollowUpStatus.PENDING, sent_at=moment,
        )  # fmt: skip
        if claimed is not None:
            returnee = session.get(Returnee, returnee_id)
            question = texts.to_returnee(returnee.language, texts_.R_FOLLOW_UP, code=code)
            done.sms_ids += notify_returnee(session, returnee, question, PURPOSE, referral_id)
            done.asked += 1
        session.commit()


def close_unanswered(session: Session, moment: datetime, answer_days: int, done: Done) -> None:
    """Pending questions asked `answer_days` ago or more are closed as no answer, in one statement."""
    done.no_answer += session.execute(
        update(FollowUp)
        .where(FollowUp.pending_clause(), FollowUp.sent_at <= moment - timedelta(days=answer_days))
        .values(status=FollowUpStatus.NO_ANSWER, answered_at=moment)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()


def run(session: Session, moment: datetime, days: tuple[int, ...], answer_days: int, texts: SmsTexts) -> Done:
    """One run of the cron's job: close the silent ones first, then ask the due ones."""
    done = Done()
    close_unanswered(session, moment, answer_days, done)
    for day in sorted(days):
        ask_due(session, moment, day, answer_days, texts, done)
    return done
