"""Assisted registration: a reception agent registers a returnee on the spot (airport, bus station).

The same effects as the USSD journey (language, registration with consent, a first request),
so the person is the same record whichever way they came: when they dial in afterwards, they
are known and not asked to register again. The consent record names the agent and the channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from flows import effects
from flows import sms as texts_
from flows.journeys.registration import CONSENT_VERSION
from flows.sms import SmsTexts
from models import returnee as returnees
from services.effects import Performed, perform
from services.lifecycle import notify_returnee
from services.referrals import refer

CHANNEL = "agent"


@dataclass(frozen=True)
class Answers:
    """What the agent typed with the person, already checked (web/admin/agents.py)."""

    phone_e164: str
    phone_digest: str
    language: str
    profile: effects.Profile
    category: str | None  # an optional first request


@dataclass
class Registered:
    returnee_id: int
    already: bool  # the number was registered before: nothing was written
    referral_code: str | None = None
    sms_ids: list[int] = field(default_factory=list)


def register_on_the_spot(
    session: Session, answers: Answers, agent_id: int, texts: SmsTexts, hash_key: str
) -> Registered:
    """Register (once per number), record the consent read aloud, make the first request, welcome by SMS.

    Runs in the caller's transaction; the caller commits, queues `sms_ids` and drops the phone's
    cached USSD profile. A number already registered changes nothing: it is found by its keyed hash.
    """
    known = returnees.find_by_phone_hash(session, answers.phone_digest)
    if known is not None and known.is_registered:
        return Registered(known.id, already=True)
    done = Performed(answers.phone_digest, answers.phone_e164, texts, hash_key)
    perform(effects.SetLanguage(answers.language), session, done)
    registration = effects.SaveRegistration(
        answers.profile, CONSENT_VERSION, channel=CHANNEL, agent_id=agent_id
    )
    perform(registration, session, done)
    if known is not None:  # the effects wrote with Core statements: read the row again
        session.refresh(known)
    returnee = returnees.find_by_phone_hash(session, answers.phone_digest)
    assert returnee is not None  # the registration has just written it
    result = Registered(returnee.id, already=False, sms_ids=done.sms_ids)
    welcome = texts.to_returnee(answers.language, texts_.R_WELCOME)
    result.sms_ids += notify_returnee(session, returnee, welcome, "welcome", None)  # not after a STOP
    if answers.category:
        referred = refer(session, returnee, answers.category, texts, channel=CHANNEL)
        result.referral_code = referred.referral.code
        result.sms_ids += referred.sms_ids
    return result
