"""Carry out what the conversation asked for, inside the caller's database transaction."""

from __future__ import annotations

from functools import singledispatch

from sqlalchemy.orm import Session

from flows import effects
from models import returnee as returnees
from models.base import utcnow


class Caller:
    """Who the effects are for: the phone's hash, and its number (kept only once registered)."""

    def __init__(self, phone_digest: str, phone_e164: str) -> None:
        self.phone_digest = phone_digest
        self.phone_e164 = phone_e164


@singledispatch
def perform(effect: object, session: Session, caller: Caller) -> None:
    raise TypeError(f"no handler for effect {type(effect).__name__}")


@perform.register
def _(effect: effects.SetLanguage, session: Session, caller: Caller) -> None:
    returnee = returnees.get_or_create(session, caller.phone_digest, effect.language)
    returnee.language = effect.language


@perform.register
def _(effect: effects.SaveRegistration, session: Session, caller: Caller) -> None:
    returnee = returnees.get_or_create(session, caller.phone_digest)
    returnee.phone_e164 = caller.phone_e164
    returnee.first_name = effect.first_name
    returnee.sex = effect.sex
    returnee.age_group = effect.age_group
    returnee.region = effect.region
    returnee.returned_from = effect.returned_from
    returnee.returned_since = effect.returned_since
    returnee.registered_at = returnee.registered_at or utcnow()
    if returnee.consent_version != effect.consent_version:
        returnees.record_consent(returnee, effect.consent_version, granted=True, channel="ussd")


@perform.register
def _(effect: effects.RefuseConsent, session: Session, caller: Caller) -> None:
    returnee = returnees.find_by_phone_hash(session, caller.phone_digest)
    if returnee is not None and returnee.consent_version is not None:
        returnees.record_consent(returnee, effect.consent_version, granted=False, channel="ussd")
