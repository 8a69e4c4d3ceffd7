"""Erasure on request: the returnee's personal data goes from every table we keep.

Referrals stay for the CNRM's figures, anonymised (no returnee, open ones cancelled). Messages
to and from the number lose their text and number; USSD transcripts of the phone are deleted.
A message already queued to confirm the erasure is the only one left to send.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models.base import as_utc, utcnow
from models.db import upsert
from models.follow_up import FollowUp
from models.messaging import InboundSms, OutboundSms, SmsStatus
from models.referral import Referral, ReferralEvent, Status
from models.returnee import Erasure, Returnee
from models.ussd import UssdSession

ERASED = "[erased]"
PIN_DIGITS = 6
MAX_WRONG_PINS = 3  # the third wrong PIN kills it: a million guesses become three
CONFIRMATION = "returnee_erased"


def erase_returnee(
    session: Session, returnee: Returnee, actor: str = "returnee", channel: str = "sms"
) -> None:
    """Remove or anonymise everything about `returnee`; the caller commits.

    `actor` and `channel` say who asked (the returnee by SMS, or staff on the admin web), so the
    open referrals' cancellation records it.
    """
    digest = returnee.phone_hash
    # A question still waiting goes (there is no one left to ask); an answer stays in the figures
    # without the person, cut from them with the referral (anonymise_referrals), as the purge does.
    session.execute(delete(FollowUp).where(FollowUp.returnee_id == returnee.id, FollowUp.pending_clause()))
    anonymise_referrals(session, withdraw_referrals(session, returnee, channel=channel, actor=actor))
    session.execute(
        update(OutboundSms)
        .where(OutboundSms.to_hash == digest,
               SmsStatus.still_to_send_clause(),
               OutboundSms.purpose != CONFIRMATION)
        .values(status=SmsStatus.FAILED, last_error="not sent: the returnee erased their data")
    )  # fmt: skip
    session.execute(
        update(OutboundSms)
        .where(OutboundSms.to_hash == digest, OutboundSms.purpose != CONFIRMATION)
        .values(to_e164="", to_hash="", body=ERASED)
    )  # fmt: skip
    session.execute(
        update(InboundSms)
        .where(InboundSms.from_hash == digest)
        .values(from_e164="", from_hash="", text=ERASED)
    )
    session.execute(delete(UssdSession).where(UssdSession.phone_hash == digest))
    record_erasure(session, digest)
    session.delete(returnee)
    session.flush()


def record_erasure(session: Session, digest: str) -> None:
    """Keep that `digest` was erased now, in the database: Redis's tombstone may be lost with
    Redis, and the erased person's open USSD session must not be rebuilt from the gateway's text."""
    upsert(session, Erasure.__table__, "phone_hash", {"phone_hash": digest, "erased_at": utcnow()},
           update=("erased_at",))  # fmt: skip


def erased_since(session: Session, digest: str, since: datetime) -> datetime | None:
    """When `digest` was erased, if it was at or after `since` (None otherwise)."""
    at = session.scalar(select(Erasure.erased_at).where(Erasure.phone_hash == digest))
    return as_utc(at) if at is not None and as_utc(at) >= since else None


def anonymise_referrals(session: Session, referral_ids: list[int]) -> None:
    """Cut referrals (and their follow-ups) from their returnee; they stay, without a person, for
    the CNRM's figures.

    Messages to providers about them (an accepted one names the returnee), the providers'
    replies that named them and free-text notes (a decline reason may describe the person) go
    too. Used by erasure and by the retention purge.
    """
    if not referral_ids:
        return
    session.execute(
        update(OutboundSms)
        .where(OutboundSms.referral_id.in_(referral_ids), OutboundSms.purpose != CONFIRMATION)
        .values(body=ERASED)
    )
    session.execute(update(InboundSms).where(InboundSms.referral_id.in_(referral_ids)).values(text=ERASED))
    session.execute(
        update(ReferralEvent).where(ReferralEvent.referral_id.in_(referral_ids)).values(note=None)
    )
    session.execute(update(FollowUp).where(FollowUp.referral_id.in_(referral_ids)).values(returnee_id=None))
    for referral in session.scalars(select(Referral).where(Referral.id.in_(referral_ids))):
        referral.returnee_id = None


def withdraw_referrals(
    session: Session, returnee: Returnee, channel: str, actor: str = "returnee"
) -> list[int]:
    """Consent withdrawn or data erased: cancel what is still open; return all their referral ids."""
    referrals = list(session.scalars(select(Referral).where(Referral.returnee_id == returnee.id)))
    for referral in referrals:
        if referral.is_open:
            referral.move(Status.CANCELLED, actor=actor, channel=channel, note="consent withdrawn")
    return [r.id for r in referrals]


def new_erase_pin(returnee: Returnee, hash_key: str) -> str:
    """A one-time PIN that the returnee must send back (SUPPRIMER <pin>) within ERASE_PIN_MINUTES."""
    pin = f"{secrets.randbelow(10**PIN_DIGITS):0{PIN_DIGITS}d}"
    returnee.erase_code_hash = _pin_hash(returnee, pin, hash_key)
    returnee.erase_requested_at = utcnow()
    return pin


def erase_pin_matches(returnee: Returnee, pin: str, hash_key: str, lifetime: timedelta) -> bool:
    requested = returnee.erase_requested_at
    fresh = requested is not None and as_utc(requested) > utcnow() - lifetime
    expected = returnee.erase_code_hash
    return bool(expected) and fresh and hmac.compare_digest(expected, _pin_hash(returnee, pin, hash_key))


def kill_erase_pin(returnee: Returnee) -> None:
    """No PIN is valid any more: the returnee must ask for a new one."""
    returnee.erase_code_hash = None


def _pin_hash(returnee: Returnee, pin: str, hash_key: str) -> str:
    return hmac.new(hash_key.encode(), f"erase:{returnee.id}:{pin}".encode(), hashlib.sha256).hexdigest()


def forgotten_confirmation(purpose: str) -> dict[str, str]:
    """Once the erasure confirmation is handed to the gateway, it forgets the number too: the
    columns to blank on its row (none for any other message)."""
    if purpose == CONFIRMATION:
        return {"to_e164": "", "to_hash": "", "body": ERASED}
    return {}
