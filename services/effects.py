"""Carry out what the conversation asked for, inside the caller's database transaction.

The two effects every returnee meets (choosing a language, registering) are single Core
statements on the returnee's table (an upsert), not an ORM load and flush: they run on the
request path of a USSD step, where each round trip and each unit of work shows. They bind
through the table's column types, so column-level encryption applies as with the ORM.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from functools import singledispatch

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from flows import effects
from flows.i18n import DEFAULT_LANGUAGE
from flows.journeys import focal
from flows.journeys.help import NO_SMS, WILL_SMS
from flows.options import REFERRAL_STATUSES
from flows.sms import SmsTexts
from flows.sms_commands import Command
from flows.text import to_ussd
from models import returnee as returnees
from models.admin import audit
from models.base import utcnow
from models.db import upsert
from models.directory import ProviderNumber
from models.returnee import ConsentRecord, Returnee
from services import lifecycle
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
    # What the effects changed in the phone's cached profile, and how many effects are known
    # to change nothing else: when all of them are, the cache is updated instead of dropped.
    profile_changes: dict[str, object] = field(default_factory=dict)
    mirrored: int = 0
    touched: list[str] = field(default_factory=list)  # other phones whose cached profile is now stale


@singledispatch
def perform(effect: object, session: Session, done: Performed) -> None:
    raise TypeError(f"no handler for effect {type(effect).__name__}")


RETURNEE, CONSENTS = Returnee.__table__, ConsentRecord.__table__
REGISTRATION = ("phone_e164", *effects.PROFILE_FIELDS)
# What the focal point's screen says once its answer is done.
_OUTCOMES = {Command.ACCEPT: focal.ACCEPTED, Command.DECLINE: focal.DECLINED, Command.CLOSE: focal.CLOSED}


@perform.register
def _(effect: effects.SetLanguage, session: Session, done: Performed) -> None:
    """The returnee, created on first sight, speaks `language` from now on."""
    values = {"phone_hash": done.phone_digest, "language": effect.language}
    upsert(session, RETURNEE, "phone_hash", values, update=("language",))


@perform.register
def _(effect: effects.SaveRegistration, session: Session, done: Performed) -> None:
    """Create or update the returnee; a consent given to new wording is recorded, once."""
    now = utcnow()
    values = {"phone_hash": done.phone_digest, "phone_e164": done.phone_e164, **asdict(effect.profile),
              "registered_at": now}  # fmt: skip
    row = upsert(session, RETURNEE, "phone_hash", values, update=REGISTRATION, keep_first=("registered_at",),
                 returning=("id", "consent_version"))  # fmt: skip
    assert row is not None  # an upsert always leaves the row
    if row.consent_version != effect.consent_version:
        session.execute(
            update(RETURNEE)
            .where(RETURNEE.c.id == row.id)
            .values(consent_version=effect.consent_version, consent_at=now)
        )
        session.execute(
            insert(CONSENTS).values(
                returnee_id=row.id,
                version=effect.consent_version,
                granted=True,
                channel=effect.channel,
                agent_id=effect.agent_id,
                at=now,
            )
        )
    done.profile_changes["registered"] = True
    done.mirrored += 1


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
    sms = done.texts.erase_pin(returnee.language, pin)
    audit(session, None, "erase.pin_sent", "returnee", returnee.id, channel="ussd")
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
    updates = WILL_SMS if returnee.opted_out_at is None else NO_SMS  # no promise STOP would break
    done.params["updates"] = to_ussd(done.texts.catalogs.gettext(returnee.language, updates))
    done.sms_ids += referred.sms_ids


@perform.register
def _(effect: effects.AnswerReferral, session: Session, done: Performed) -> None:
    """The focal point's answer, as its SMS would be: the same use case, on channel `ussd`.

    What it did is said on the last screen (`{outcome}`): the referral may have moved since the
    menu was shown (another focal point answered, the deadline passed), and then nothing changes.
    """
    number = session.scalar(select(ProviderNumber).where(ProviderNumber.phone_hash == done.phone_digest))
    say = done.texts.catalogs.gettext
    if number is None:  # no longer a provider's number since the menu was shown
        done.params["outcome"] = to_ussd(say(DEFAULT_LANGUAGE, focal.NOT_YOURS).format(code=effect.code))
        return
    lang = number.provider.language
    reason = ""
    # A decline's reason from the menu, in the provider's language, as its SMS would say it.
    if effect.action == Command.DECLINE:
        reason = next(
            (str(say(lang, o.label)) for o in focal.REASONS if o.code == effect.reason), effect.reason or ""
        )
    by = lifecycle.Answer.of(number, channel="ussd")
    answered = lifecycle.answer_code(session, effect.code, effect.action, by, done.texts, reason)
    referral = answered.referral
    if referral is None or answered.outcome == lifecycle.NOT_ASSIGNED:
        done.params["outcome"] = to_ussd(say(lang, focal.NOT_YOURS).format(code=effect.code))
        return
    if answered.outcome == lifecycle.ILLEGAL:
        status = say(lang, REFERRAL_STATUSES.get(referral.status, referral.status))
        done.params["outcome"] = to_ussd(say(lang, focal.UNCHANGED).format(code=referral.code, status=status))
        return
    done.sms_ids += answered.sms_ids
    done.params["outcome"] = to_ussd(say(lang, _OUTCOMES[effect.action]).format(code=referral.code))
    returnee = session.get(Returnee, referral.returnee_id) if referral.returnee_id else None
    if returnee is not None:  # their "My requests" shows the new status on their next dial
        done.touched.append(returnee.phone_hash)
