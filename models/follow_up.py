"""A follow-up of an outcome: days after a referral closed, the returnee is asked by SMS whether
they are still served, and their answer (or their silence) is the outcome the CNRM reports on.

One row per referral and day (FOLLOW_UP_DAYS): the row is written when the question is sent, and
its unique key is what makes a question go once when several workers run the cron. Which
follow-ups wait for an answer is said once, by `FollowUpStatus.PENDING` and `pending_clause`.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, Index, String, UniqueConstraint, exists, select
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base
from models.referral import Referral


class FollowUpStatus(enum.StrEnum):
    """Where a follow-up is: asked and waiting, or its outcome."""

    PENDING = "pending"  # asked by SMS, no answer yet
    SERVED = "served"  # 1: still served
    NOT_SERVED = "not_served"  # 2: not served (any more)
    NEEDS_MORE = "needs_more"  # 3: needs something else
    NO_ANSWER = "no_answer"  # no answer within FOLLOW_UP_ANSWER_DAYS

    @property
    def wants_a_new_request(self) -> bool:
        """Answers after which the returnee is offered a new request and a coordinator looks."""
        return self in WANTS_MORE


WANTS_MORE = (FollowUpStatus.NOT_SERVED, FollowUpStatus.NEEDS_MORE)
OUTCOMES = (
    FollowUpStatus.SERVED,
    FollowUpStatus.NOT_SERVED,
    FollowUpStatus.NEEDS_MORE,
    FollowUpStatus.NO_ANSWER,
)
# What the returnee's digit means (the question and its help SMS say the same).
ANSWERS = {"1": FollowUpStatus.SERVED, "2": FollowUpStatus.NOT_SERVED, "3": FollowUpStatus.NEEDS_MORE}


class FollowUp(Base):
    __tablename__ = "follow_up"
    __table_args__ = (
        UniqueConstraint("referral_id", "day", name="uq_follow_up_referral_day"),
        # The cron's time-out and the inbound matching read pending ones by when they were asked.
        Index("ix_follow_up_status_sent_at", "status", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    # Cut, like the referral's, by the retention purge: the outcome stays for the figures, without a person.
    returnee_id: Mapped[int | None] = mapped_column(ForeignKey("returnee.id", ondelete="CASCADE"), index=True)
    day: Mapped[int]  # days after the closing (one of FOLLOW_UP_DAYS)
    status: Mapped[str] = mapped_column(String(12), default=FollowUpStatus.PENDING)
    sent_at: Mapped[datetime]  # when the question was written to the outbox (the cron's clock)
    answered_at: Mapped[datetime | None]  # the answer, or the time-out that closed it as no answer

    @staticmethod
    def pending_clause() -> ColumnElement[bool]:
        """Waiting for the returnee's answer: the one rule the answer matching and the time-out use."""
        return FollowUp.status == FollowUpStatus.PENDING


def wants_new_request_clause(returnee_id: int) -> ColumnElement[bool]:
    """The returnee said at a follow-up that they need help (2 or 3) and has made no request since:
    their next USSD dial offers them one."""
    later = select(Referral.id).where(
        Referral.returnee_id == FollowUp.returnee_id, Referral.created_at > FollowUp.answered_at
    )
    return exists(
        select(FollowUp.id).where(
            FollowUp.returnee_id == returnee_id,
            FollowUp.status.in_([s.value for s in WANTS_MORE]),
            ~exists(later),
        )
    )
