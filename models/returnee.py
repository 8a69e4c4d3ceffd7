"""The returnee: who they are for a referral, in category codes, and their consent history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session, relationship

from models.base import Base, utcnow
from models.encrypted import EncryptedText

NOT_CHOSEN = ""  # the returnee's language before their own choice (see Returnee)


class Returnee(Base):
    """A person known by phone; `registered_at` is set once they registered and consented.

    Found by `phone_hash`; the number and first name are encrypted at rest (models.encrypted).
    `language` is empty until the returnee chooses one on USSD: a record made by an SMS, an
    opt-out or anything else must not decide it, so their first dial asks (SMS to them use the
    default language meanwhile).
    """

    __tablename__ = "returnee"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone_e164: Mapped[str | None] = mapped_column(EncryptedText)
    language: Mapped[str] = mapped_column(String(5), default=NOT_CHOSEN)
    first_name: Mapped[str | None] = mapped_column(EncryptedText)
    sex: Mapped[str | None] = mapped_column(String(10))
    age_group: Mapped[str | None] = mapped_column(String(10))
    region: Mapped[str | None] = mapped_column(String(20))
    returned_from: Mapped[str | None] = mapped_column(String(20))
    returned_since: Mapped[str | None] = mapped_column(String(10))
    consent_version: Mapped[str | None] = mapped_column(String(20))
    consent_at: Mapped[datetime | None]
    registered_at: Mapped[datetime | None] = mapped_column(index=True)  # the dashboard counts by period
    opted_out_at: Mapped[datetime | None]
    erase_code_hash: Mapped[str | None] = mapped_column(String(64))
    erase_requested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    consents: Mapped[list[ConsentRecord]] = relationship(
        back_populates="returnee", cascade="all, delete-orphan", order_by="ConsentRecord.id"
    )

    @property
    def is_registered(self) -> bool:
        return self.registered_at is not None and self.consent_version is not None

    @property
    def is_minor(self) -> bool:
        return self.age_group == "u18"


class ConsentRecord(Base):
    """Every grant or withdrawal, with the wording's version and the channel it came through."""

    __tablename__ = "consent_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    returnee_id: Mapped[int] = mapped_column(ForeignKey("returnee.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(20))
    granted: Mapped[bool]
    channel: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The reception agent who read the consent aloud (channel "agent"); None when the person
    # answered on their own phone.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("admin_user.id", ondelete="SET NULL"))

    returnee: Mapped[Returnee] = relationship(back_populates="consents")


def find_by_phone_hash(session: Session, digest: str) -> Returnee | None:
    return session.scalar(select(Returnee).where(Returnee.phone_hash == digest))


@dataclass(frozen=True)
class Profile:
    """What a USSD session needs to know of a phone to start, read without loading the entity."""

    id: int
    language: str | None  # None: not chosen yet, the dial asks
    registered: bool


def profile(session: Session, digest: str) -> Profile | None:
    row = session.execute(
        select(Returnee.id, Returnee.language, Returnee.registered_at, Returnee.consent_version).where(
            Returnee.phone_hash == digest
        )
    ).first()
    if row is None:
        return None
    return Profile(
        row.id, row.language or None, row.registered_at is not None and row.consent_version is not None
    )


def get_or_create(session: Session, digest: str) -> Returnee:
    """The returnee for a phone hash, created (with nothing but the hash, no language) on first sight."""
    returnee = find_by_phone_hash(session, digest)
    if returnee is None:
        returnee = Returnee(phone_hash=digest, language=NOT_CHOSEN)
        session.add(returnee)
        session.flush()
    return returnee


def record_consent(returnee: Returnee, version: str, granted: bool, channel: str) -> None:
    """Grant or withdraw consent, keeping the history the APDP may ask for."""
    now = utcnow()
    session = object_session(returnee)
    session.add(
        ConsentRecord(returnee_id=returnee.id, version=version, granted=granted, channel=channel, at=now)
    )
    returnee.consent_version = version if granted else None
    returnee.consent_at = now if granted else None


class Erasure(Base):
    """That a phone was erased, and when: the one trace erasure keeps, by keyed hash only.

    Redis keeps a tombstone too, but Redis may be down or emptied while the erased person's USSD
    session is still open; this row is what stops that session being rebuilt from the gateway's
    `text` (services/converse.py). It goes with the retention purge once no session could be open.
    """

    __tablename__ = "erasure"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
