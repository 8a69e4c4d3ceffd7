"""The one clock: aware UTC times, whatever the database gives back."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Aware UTC now: the one clock the models and the spool use (tests may pass their own times)."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """In UTC: an aware time is converted; a naive one (SQLite drops the zone) is UTC already."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
