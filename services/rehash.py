"""Rotating PHONE_HASH_KEY: every stored phone hash is recomputed from a number we still hold.

A keyed hash cannot be converted to another key; only the clear number can be hashed again.
The numbers we hold are those of registered returnees, provider phones, and SMS not yet
purged. A hash with no number behind it (someone who dialled but never registered, whose
messages are gone) cannot follow: it stays as it was, found by no one, which is what
anonymisation would have done to it anyway. Run with the web and the worker stopped.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.directory import ProviderNumber
from models.messaging import InboundSms, OutboundSms
from models.phone import phone_hash
from models.returnee import Returnee
from models.ussd import UssdSession

HASH_COLUMNS = (
    (Returnee, Returnee.phone_hash),
    (ProviderNumber, ProviderNumber.phone_hash),
    (InboundSms, InboundSms.from_hash),
    (OutboundSms, OutboundSms.to_hash),
    (UssdSession, UssdSession.phone_hash),
)


def known_numbers(session: Session) -> set[str]:
    """Every phone number still held in clear."""
    numbers: set[str] = set()
    for column in (Returnee.phone_e164, ProviderNumber.phone_e164, InboundSms.from_e164, OutboundSms.to_e164):
        numbers.update(n for n in session.scalars(select(column).distinct()) if n)
    return numbers


def rehash_phones(session: Session, old_key: str, new_key: str) -> dict[str, int]:
    """Replace every hash under `old_key` by the one under `new_key`; the caller commits.

    Pending erasure PINs are keyed with the same key: they are dropped (the person asks again).
    Returns how many rows each table had changed, and how many returnees could not follow.
    """
    mapping = {phone_hash(n, old_key): phone_hash(n, new_key) for n in known_numbers(session)}
    counts: dict[str, int] = {}
    for model, column in HASH_COLUMNS:
        changed = 0
        for old, new in mapping.items():
            changed += session.execute(update(model).where(column == old).values({column.key: new})).rowcount
        counts[model.__tablename__] = changed
    session.execute(update(Returnee).values(erase_code_hash=None, erase_requested_at=None))
    new_hashes = set(mapping.values())
    counts["returnees_left_behind"] = sum(
        1 for h in session.scalars(select(Returnee.phone_hash)) if h not in new_hashes
    )
    return counts
