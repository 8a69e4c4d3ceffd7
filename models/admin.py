"""People who use the admin web, and the append-only audit log of what they did.

Passwords are hashed with argon2id. The audit log says who did what to which object and when;
its `detail` never holds personal data (ids and flags only), so it can be kept for years.
"""

from __future__ import annotations

import contextlib
import enum
import re
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column
from zxcvbn import zxcvbn

from models.base import Base, as_utc, utcnow

MAX_FAILED_LOGINS = 5
LOCK_OUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12
# zxcvbn's scores run 0-4; below 3 the password is on its lists of common passwords, words and
# names, or a keyboard run or repeat of them ("aaaaaaaaaaaa", "password1234", "qwertyuiop12").
MIN_PASSWORD_SCORE = 3

_hasher = PasswordHasher()


class Weakness(enum.StrEnum):
    """Why a password is refused: the one policy for the admin's forms and `flask create-user`."""

    TOO_SHORT = "too-short"
    GUESSABLE = "guessable"


def password_weakness(password: str, *hints: str) -> Weakness | None:
    """What is wrong with a new password, or None; `hints` (the email) count as guessable words."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return Weakness.TOO_SHORT
    # zxcvbn's time grows with the length; past 100 characters no list holds the password.
    words = [h for hint in hints for h in (hint.lower(), *re.split(r"[@.+_-]", hint.lower())) if len(h) > 2]
    if len(password) <= 100 and zxcvbn(password, user_inputs=words)["score"] < MIN_PASSWORD_SCORE:
        return Weakness.GUESSABLE
    return None


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything, including users and the audit log
    COORDINATOR = "coordinator"  # referrals and providers
    VIEWER = "viewer"  # read only, personal data masked
    PROVIDER = "provider"  # the focal point of one provider: that provider's referrals only
    AGENT = "agent"  # a reception agent (airport, bus station): registers returnees, sees nothing else


class User(Base):
    """An account on the admin web; a `provider` user belongs to exactly one provider."""

    __tablename__ = "admin_user"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'coordinator', 'viewer', 'provider', 'agent')", name="role"),
        CheckConstraint("(role = 'provider') = (provider_id IS NOT NULL)", name="provider_role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(12))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("provider.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)

    def password_matches(self, password: str) -> bool:
        """Check the password, upgrading the hash when argon2's parameters have moved on."""
        try:
            _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        if _hasher.check_needs_rehash(self.password_hash):
            self.set_password(password)
        return True

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and as_utc(self.locked_until) > now

    def record_failed_login(self, now: datetime) -> None:
        """Count a failure; the fifth in a row locks the account for a quarter of an hour."""
        self.failed_logins += 1
        if self.failed_logins >= MAX_FAILED_LOGINS:
            self.locked_until = now + LOCK_OUT
            self.failed_logins = 0

    def record_login(self, now: datetime) -> None:
        self.failed_logins = 0
        self.locked_until = None
        self.last_login_at = now


@cache
def _dummy_hash() -> str:
    return _hasher.hash("sira-no-such-user")


def spend_password_check(password: str) -> None:
    """Verify against a dummy hash: an unknown email costs what a known one does."""
    with contextlib.suppress(VerificationError):
        _hasher.verify(_dummy_hash(), password)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


class AuditEntry(Base):
    """One admin action or view of personal data; rows are only ever added."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("admin_user.id"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str | None] = mapped_column(String(30))
    object_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppendOnly(RuntimeError):
    """An audit entry was about to be changed or deleted."""


@event.listens_for(AuditEntry, "before_update")
@event.listens_for(AuditEntry, "before_delete")
def _refuse_change(_mapper: object, _connection: object, _target: AuditEntry) -> None:
    raise AppendOnly("audit entries are never changed or deleted")


def audit(
    session: Session,
    user_id: int | None,
    action: str,
    object_type: str | None = None,
    object_id: str | int | None = None,
    **detail: Any,
) -> AuditEntry:
    """Add an audit entry to the caller's transaction (it commits with the change it records)."""
    entry = AuditEntry(
        user_id=user_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail,
    )
    session.add(entry)
    return entry
