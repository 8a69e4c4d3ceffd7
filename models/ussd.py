"""USSD sessions and their steps: the transcript coordinators read, with server timings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.encrypted import EncryptedText

# The Malian networks a gateway reports a session on, by network code (MCC 610 and the MNC).
NETWORKS = {"61001": "Moov Africa Malitel", "61002": "Orange Mali", "61003": "Telecel"}


class UssdSession(Base):
    """One dial, from the first screen to END or to the gateway's end-of-session notice."""

    __tablename__ = "ussd_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(100), unique=True)
    phone_hash: Mapped[str] = mapped_column(String(64), index=True)
    service_code: Mapped[str] = mapped_column(String(40))
    network_code: Mapped[str | None] = mapped_column(String(10))
    language: Mapped[str | None] = mapped_column(String(5))
    origin: Mapped[dict | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    outcome: Mapped[str | None] = mapped_column(String(40))
    end_status: Mapped[str | None] = mapped_column(String(20))
    end_duration_ms: Mapped[int | None]
    end_hops: Mapped[int | None]
    end_error: Mapped[str | None] = mapped_column(String(200))
    end_report: Mapped[dict | None] = mapped_column(JSON)
    ended_at: Mapped[datetime | None]

    steps: Mapped[list[UssdStep]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="UssdStep.seq"
    )


class UssdStep(Base):
    """One request of a session: what the returnee typed and the screen they were shown.

    What they typed may be their first name, so it is encrypted at rest; screens are our texts.
    """

    __tablename__ = "ussd_step"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("ussd_session.session_id", ondelete="CASCADE"))
    seq: Mapped[int]
    user_input: Mapped[str] = mapped_column(EncryptedText)
    screen: Mapped[str] = mapped_column(Text)
    server_ms: Mapped[float]
    at: Mapped[datetime] = mapped_column(default=utcnow)

    session: Mapped[UssdSession] = relationship(back_populates="steps")
