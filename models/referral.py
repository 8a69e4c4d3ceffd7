"""A referral: one returnee's need sent to one provider, with its lifecycle and its events.

The lifecycle is a small enum with an explicit table of allowed moves, as RQ does for job
status; every move is an event saying who, when and through which channel.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, Index, String, and_, or_, select, text
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from infra import referral_code
from models.base import Base, utcnow
from models.directory import Provider
from models.encrypted import EncryptedText


class Status(enum.StrEnum):
    """Where a referral is in its life. Which statuses count as open is said here once: the
    Python (`is_open`), the SQL (`open_clause`) and the database's own index (`OPEN_SQL`) come
    from `IN_HAND` and `AT_DESK_IF_UNASSIGNED` below."""

    NEW = "new"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    def is_open(self, provider_id: int | None) -> bool:
        """Open: in a provider's hands, or waiting at the coordination desk after a decline or
        an expiry that found no other provider."""
        return self in IN_HAND or (self in AT_DESK_IF_UNASSIGNED and provider_id is None)

    @staticmethod
    def open_clause() -> ColumnElement[bool]:
        """`is_open`, as SQL on the referral table."""
        return or_(
            Referral.status.in_([s.value for s in IN_HAND]),
            and_(
                Referral.status.in_([s.value for s in AT_DESK_IF_UNASSIGNED]), Referral.provider_id.is_(None)
            ),
        )


class Flag(enum.StrEnum):
    """Why a referral waits for a coordinator's look. Set by the lifecycle and the returnee's
    answers; cleared by a coordinator, or, for a follow-up's answer, by the returnee's next
    request (what that answer asked for). `Referral.flagged` is the one rule of what is flagged."""

    NOT_HELPED = "not_helped"  # after the closure, the returnee answered "2 = not helped"
    NO_PROVIDER = "no_provider"  # no provider left to take it: the coordination desk must
    NO_ANSWER = "no_answer"  # a provider let the deadline pass (it went on to the next one)
    FOLLOW_UP_NOT_SERVED = "follow_no"  # at a follow-up, the returnee answered "2 = not served"
    FOLLOW_UP_NEEDS_MORE = "follow_more"  # at a follow-up, the returnee answered "3 = something else"


IN_HAND = (Status.NEW, Status.SENT, Status.ACCEPTED)  # a provider has it (or is being sent it)
AT_DESK_IF_UNASSIGNED = (Status.DECLINED, Status.EXPIRED)  # with no provider: at the coordination desk


def _sql_list(statuses: tuple[Status, ...]) -> str:
    return ", ".join(f"'{s.value}'" for s in statuses)


# `is_open`, as the partial index's predicate (plain SQL both back-ends read).
OPEN_SQL = f"status IN ({_sql_list(IN_HAND)}) OR (status IN ({_sql_list(AT_DESK_IF_UNASSIGNED)}) AND provider_id IS NULL)"
open_clause = Status.open_clause
SENT_SQL = f"status = '{Status.SENT}'"  # waiting on a provider's answer, as a partial index's predicate


ALLOWED = {
    Status.NEW: {Status.SENT, Status.CANCELLED},
    Status.SENT: {Status.ACCEPTED, Status.DECLINED, Status.EXPIRED, Status.CANCELLED},
    Status.ACCEPTED: {Status.CLOSED, Status.CANCELLED},
    Status.DECLINED: {Status.SENT, Status.CANCELLED},
    Status.EXPIRED: {Status.SENT, Status.CANCELLED},
    Status.CLOSED: set(),
    Status.CANCELLED: set(),
}


class IllegalTransition(ValueError):
    """The referral cannot move from its status to the one asked; nothing was changed."""


class Referral(Base):
    __tablename__ = "referral"
    __table_args__ = (
        # One open referral per returnee and need, enforced by the database: two racing requests
        # (gateway retries while Redis is down) cannot both create one.
        Index(
            "uq_referral_open_need",
            "returnee_id",
            "requested_category",
            unique=True,
            sqlite_where=text(OPEN_SQL),
            postgresql_where=text(OPEN_SQL),
        ),
        # The admin's list pages walk this index alone (newest first, see web/admin/paging.py).
        Index("ix_referral_created_at_id", "created_at", "id"),
        # What waits for a coordinator (the header's count on every admin page, the deadlines'
        # job): past a deadline, at the desk, flagged. One small index each, so that PostgreSQL
        # ORs them instead of reading the whole table for every page.
        Index("ix_referral_sent_assigned_at", "assigned_at", sqlite_where=text(SENT_SQL),
              postgresql_where=text(SENT_SQL)),
        Index("ix_referral_unassigned_status", "status", sqlite_where=text("provider_id IS NULL"),
              postgresql_where=text("provider_id IS NULL")),
        Index("ix_referral_flagged_at", "flagged_at", sqlite_where=text("flagged_at IS NOT NULL"),
              postgresql_where=text("flagged_at IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    returnee_id: Mapped[int | None] = mapped_column(
        ForeignKey("returnee.id", ondelete="SET NULL"), index=True
    )
    category: Mapped[str] = mapped_column(ForeignKey("category.code"))
    requested_category: Mapped[str] = mapped_column(String(30))
    region: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default=Status.NEW, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    assigned_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    flagged_at: Mapped[datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(String(12))  # a `Flag`, while flagged_at is set
    feedback_requested_at: Mapped[datetime | None]
    feedback: Mapped[str | None] = mapped_column(String(10))

    provider: Mapped[Provider | None] = relationship()
    events: Mapped[list[ReferralEvent]] = relationship(
        back_populates="referral", cascade="all, delete-orphan", order_by="ReferralEvent.id"
    )

    @property
    def is_open(self) -> bool:
        return Status(self.status).is_open(self.provider_id)

    @property
    def at_desk(self) -> bool:
        """No provider could take it: the coordination desk must."""
        return self.provider_id is None

    @hybrid_property
    def flagged(self) -> bool:
        """Waiting for a coordinator's look (see `Flag`), until one clears it."""
        return self.flagged_at is not None

    @flagged.inplace.expression
    @classmethod
    def _flagged_expression(cls) -> ColumnElement[bool]:
        return cls.flagged_at.is_not(None)

    def flag(self, why: Flag) -> None:
        """Put the referral before the coordinators, saying why; a later reason replaces an earlier one."""
        self.flagged_at, self.flag_reason = utcnow(), why

    def clear_flag(self) -> None:
        """A coordinator has looked: the flag goes, and nothing else about the referral changes."""
        self.flagged_at, self.flag_reason = None, None
        self.updated_at = Referral.updated_at  # a look is not a change: the time of the last one stays

    def move(self, to: Status, actor: str, channel: str, note: str | None = None) -> ReferralEvent:
        """Change status if the lifecycle allows it, recording who did it and how."""
        current = Status(self.status)
        if to not in ALLOWED[current]:
            raise IllegalTransition(f"{current} -> {to}")
        event = ReferralEvent(from_status=current, to_status=to, actor=actor, channel=channel, note=note)
        self.status = to
        self.events.append(event)
        return event


class ReferralEvent(Base):
    """One change in a referral's life: who, when, through which channel."""

    __tablename__ = "referral_event"
    # Acceptances of a period, read from the index alone (the dashboard's median time to acceptance).
    __table_args__ = (Index("ix_referral_event_to_status_at", "to_status", "at", "referral_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"))
    note: Mapped[str | None] = mapped_column(EncryptedText)  # free text: may describe the person

    referral: Mapped[Referral] = relationship(back_populates="events")


def new_code() -> str:
    """Five characters that always hold a letter: an all-digit code would read as a number or a
    PIN (in SMS, and in what people copy), and would not look like a code to anyone."""
    while True:
        code = "".join(secrets.choice(referral_code.ALPHABET) for _ in range(referral_code.LENGTH))
        if not code.isdigit():
            return code


def unique_code(session: Session) -> str:
    """A fresh code; 31^5 (28 million) codes make a clash rare, and we check anyway."""
    while True:
        code = new_code()
        if session.scalar(select(Referral.id).where(Referral.code == code)) is None:
            return code


def open_referral_for(session: Session, returnee_id: int, requested_category: str) -> Referral | None:
    return session.scalar(
        select(Referral).where(
            Referral.returnee_id == returnee_id,
            Referral.requested_category == requested_category,
            open_clause(),
        )
    )
