"""Carry out what the conversation asked for, inside the caller's database transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import singledispatch

from sqlalchemy.orm import Session

from flows import effects
from flows import sms as texts_
from flows.sms import SmsTexts
from models import returnee as returnees
from models.base import utcnow
from services.erasure import new_erase_pin, withdraw_referrals
from services.referrals import NotReferable, queue_sms, refer

log = logging.getLogger(__name__)


@dataclass
class Performed:
    """Who the effects are for, and what they left for after the commit."""

    phone_digest: str
    phone_e164: str
    texts: SmsTexts
    hash_key: str
    params: dict[str, str] = field(default_factory=dict)
    sms_ids: list[int] = field(default_factory=list)


@singledispatch
def perform(effect: object, session: Session, done: Performed) -> None:
    raise TypeError(f"no handler for effect {type(effect).__name__}")


@perform.register
def _(effect: effects.SetLanguage, session: Session, done: Performed) -> None:
    returnee = returnees.get_or_create(session, done.phone_digest, effect.language)
    returnee.language = effect.language


@perform.register
def _(effect: effects.SaveRegistration, session: Session, done: Performed) -> None:
    returnee = returnees.get_or_create(session, done.phone_digest)
    returnee.phone_e164 = done.phone_e164
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
def _(effect: effects.RefuseConsent, session: Session, done: Performed) -> None:
    returnee = returnees.find_by_phone_hash(session, done.phone_digest)
    if returnee is not None and returnee.consent_version is not None:
        returnees.record_consent(returnee, effect.consent_version, granted=False, channel="ussd")
        withdraw_referrals(session, returnee, channel="ussd")


@perform.register
def _(effect: effects.RequestErasure, session: Session, done: Performed) -> None:
    returnee = returnees.get_or_create(session, done.phone_digest)
    pin = new_erase_pin(returnee, done.hash_key)
    sms = done.texts.to_returnee(returnee.language, texts_.R_ERASE_CONFIRM, pin=pin)
    done.sms_ids.append(
        queue_sms(session, done.phone_e164, done.phone_digest, sms, "returnee_reply", None).id
    )


@perform.register
def _(effect: effects.CreateReferral, session: Session, done: Performed) -> None:
    returnee = returnees.find_by_phone_hash(session, done.phone_digest)
    if returnee is None:
        raise NotReferable("no returnee for this phone")
    referred = refer(session, returnee, effect.category, done.texts)
    done.params["code"] = referred.referral.code
    done.sms_ids += referred.sms_ids
