"""Outgoing SMS as an outbox: the row, not Redis, is the source of truth for what must be sent.

A message is written in the same transaction as the change that causes it; jobs and the sweeper
only move it forward. Delivery statuses only move forward too (a late `Sent` never overwrites
`Success`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ColumnElement, ForeignKey, Index, String, Update, and_, case, or_, update
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, utcnow
from models.encrypted import EncryptedText


class SmsStatus(enum.StrEnum):
    """Where an outgoing SMS is. Which statuses a send job may claim (`TO_SEND`) and which are
    still to send (`STILL_TO_SEND`: those, and one a job holds) is said here once; the sweeper,
    the send job, the retention purge and the erasure take their SQL from `to_send_clause` and
    `still_to_send_clause`."""

    PENDING = "pending"  # waiting for a send job (first try or retry)
    SENDING = "sending"  # claimed by a job; reclaimed by the sweeper if the job died
    HELD = "held"  # the gateway holds our account (balance, risk): retried, shown to coordinators
    ACCEPTED = "accepted"  # the gateway took it; never sent again
    FAILED = "failed"  # refused for good (invalid number, blacklisted...)
    DEAD = "dead"  # gave up after retrying for hours; an admin may retry

    def is_still_to_send(self) -> bool:
        """Not yet taken by the gateway nor given up: retention and erasure must leave it be."""
        return self in STILL_TO_SEND

    @staticmethod
    def to_send_clause() -> ColumnElement[bool]:
        """A send job may claim it: waiting, or held by the gateway's account."""
        return OutboundSms.status.in_([s.value for s in TO_SEND])

    @staticmethod
    def still_to_send_clause() -> ColumnElement[bool]:
        """`is_still_to_send`, as SQL on the outbound SMS table."""
        return OutboundSms.status.in_([s.value for s in STILL_TO_SEND])


TO_SEND = (SmsStatus.PENDING, SmsStatus.HELD)  # a send job may claim it
STILL_TO_SEND = (*TO_SEND, SmsStatus.SENDING)  # the gateway has not taken it yet

# Delivery report statuses by how far along they are; unknown ones are kept as text at rank 1.
DELIVERY_RANK = {
    "Sent": 1, "Submitted": 1, "Buffered": 1,
    "Success": 2, "Failed": 2, "Rejected": 2, "AbsentSubscriber": 2, "Expired": 2,
}  # fmt: skip


class OutboundSms(Base):
    """One message to send; the number and text are encrypted at rest, `to_hash` finds them."""

    __tablename__ = "outbound_sms"
    # The SMS log walks this index alone (newest first, see web/admin/paging.py).
    __table_args__ = (
        Index("ix_outbound_sms_created_at_id", "created_at", "id"),
        # Each route's messages and cost of the last 24 hours (the SMS log and the Queues page).
        Index("ix_outbound_sms_accepted_at", "accepted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_e164: Mapped[str] = mapped_column(EncryptedText)
    to_hash: Mapped[str] = mapped_column(String(64), index=True)
    sender: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(EncryptedText)
    purpose: Mapped[str] = mapped_column(String(30))
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral.id", ondelete="SET NULL"), index=True
    )
    segments: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(10), default=SmsStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))
    # The gateway's id, scoped by its kind (gateway.routing.scoped_id): what delivery reports find.
    gateway_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    route: Mapped[str | None] = mapped_column(String(30))  # the route (SMS_ROUTES) that took it
    gateway_status: Mapped[str | None] = mapped_column(String(40))
    cost: Mapped[str | None] = mapped_column(String(30))
    accepted_at: Mapped[datetime | None]
    delivery_status: Mapped[str | None] = mapped_column(String(40))
    delivery_reason: Mapped[str | None] = mapped_column(String(100))
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None]  # text and number blanked by the retention purge

    @classmethod
    def record_delivery(cls, gateway_id: str, status: str, reason: str | None, at: datetime) -> Update:
        """The UPDATE that applies a delivery report only if it moves the status forward.

        One guarded statement, not a read then a write: a gateway may send two reports at once
        (Kannel's SMSC ack and delivery arrive together, in either order), and a read-then-write
        on SQLite, which has no row locks, let the older one overwrite the newer.
        """
        ranks = {name: rank for name, rank in DELIVERY_RANK.items() if rank != 1}
        current = case(ranks, value=cls.delivery_status, else_=1)
        new = DELIVERY_RANK.get(status, 1)
        return (
            update(cls)
            .where(cls.gateway_id == gateway_id)
            .where(or_(cls.delivery_status.is_(None), and_(current < 2, current <= new)))
            .values(
                delivery_status=status[:40],
                delivery_reason=(reason or None) and reason[:100],
                delivered_at=at,
            )
        )


class InboundSms(Base):
    """Every message received, whatever it says; the gateway id makes a retry a no-op.

    The sender's number and the text are encrypted at rest; `from_hash` finds them. `to` is our
    own short code or number, not personal.
    """

    __tablename__ = "inbound_sms"

    id: Mapped[int] = mapped_column(primary_key=True)
    gateway_id: Mapped[str] = mapped_column(String(100), unique=True)
    from_e164: Mapped[str] = mapped_column(EncryptedText)
    from_hash: Mapped[str] = mapped_column(String(64), index=True)
    to: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(EncryptedText)
    link_id: Mapped[str | None] = mapped_column(String(100))
    sent_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sender_kind: Mapped[str | None] = mapped_column(String(10))
    handled_as: Mapped[str | None] = mapped_column(String(40))
    # The referral a provider's reply named: its text may describe the returnee (erased with them).
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral.id", ondelete="SET NULL"), index=True
    )
    purged_at: Mapped[datetime | None]  # text and number blanked by the retention purge
