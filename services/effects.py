"""Carry out what the conversation asked for, inside the caller's database transaction.

The two effects every returnee meets (choosing a language, registering) are single Core
statements on the returnee's table (an upsert), not an ORM load and flush: they run on the
request path of a USSD step, where each round trip and each unit of work shows. They bind
through the table's column types, so column-level encryption applies as with the ORM. On
PostgreSQL a USSD step whose one effect is a registration goes further: `register_at_once`
writes it with its consent record and the session's row in one statement.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from functools import lru_cache, singledispatch

from sqlalchemy import (
    BindParameter,
    Connection,
    FromClause,
    Insert,
    Select,
    bindparam,
    case,
    insert,
    select,
    true,
)
from sqlalchemy.orm import Session

from flows import effects
from flows.i18n import DEFAULT_LANGUAGE
from flows.journeys import focal
from flows.journeys.help import NO_SMS, WILL_SMS
from flows.options import REFERRAL_STATUSES
from flows.sms import SmsTexts
from flows.sms_commands import Command
from flows.text import to_ussd
from models import UssdSession
from models import returnee as returnees
from models.admin import audit
from models.base import utcnow
from models.db import conflict_changes, dialect_insert, upsert, with_defaults
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


RETURNEE, CONSENTS, SESSIONS = Returnee.__table__, ConsentRecord.__table__, UssdSession.__table__
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
    connection, dialect = session.connection(), session.get_bind().dialect.name
    values = _registration_values(effect, done)
    params = {**values, **_consent_params(effect)}
    connection.execute(_registration(dialect, tuple(values)), params)
    connection.execute(_consent_recorded_in_table(), params)
    _registered(done)


def register_at_once(connection: Connection, effect: effects.SaveRegistration, done: Performed,
                     session_row: dict[str, object]) -> None:  # fmt: skip
    """PostgreSQL: the registration, its consent record and the USSD session's row in one statement.

    As a transaction, a registration step took four round trips to the database (BEGIN, the
    upsert, the session's row, COMMIT). As one statement in autocommit it takes one, and is as
    atomic: the data-modifying CTEs of a statement are applied all or not at all. A registration
    racing another for the same phone waits for it, then finds the consent already stamped.
    """
    values = _registration_values(effect, done)
    row = with_defaults(SESSIONS, session_row)
    params = {**values, **_consent_params(effect), **{_SESSION_PARAM + name: v for name, v in row.items()}}
    connection.execute(_registration_with_session(tuple(values), tuple(row)), params)
    _registered(done)


def _registered(done: Performed) -> None:
    done.profile_changes["registered"] = True
    done.mirrored += 1


_SESSION_PARAM = "session_"
_CHANNEL = bindparam("consent_channel", type_=CONSENTS.c.channel.type)
_AGENT = bindparam("consent_agent", type_=CONSENTS.c.agent_id.type)


def _registration_values(effect: effects.SaveRegistration, done: Performed) -> dict[str, object]:
    """The returnee's row as the registration writes it (the model's defaults for the rest)."""
    now = utcnow()
    values = {"phone_hash": done.phone_digest, "phone_e164": done.phone_e164, **asdict(effect.profile),
              "registered_at": now, "consent_version": effect.consent_version, "consent_at": now}  # fmt: skip
    return with_defaults(RETURNEE, values)


def _consent_params(effect: effects.SaveRegistration) -> dict[str, object]:
    return {_CHANNEL.key: effect.channel, _AGENT.key: effect.agent_id}


def _value(name: str) -> BindParameter:
    """The returnee's column `name` as a parameter, bound through its type (encryption included)."""
    return bindparam(name, type_=RETURNEE.c[name].type)


@lru_cache(maxsize=4)
def _registration(dialect: str, columns: tuple[str, ...]) -> Insert:
    """The returnee's upsert: their profile, and their consent's version, whose time `consent_at`
    is set to the statement's only when the version changes: the one sign that a record is due."""
    new_row = dialect_insert(RETURNEE, dialect).values({name: _value(name) for name in columns})
    changes = conflict_changes(RETURNEE, new_row, (*REGISTRATION, "consent_version"), ("registered_at",))
    same_consent = RETURNEE.c.consent_version.is_not_distinct_from(new_row.excluded.consent_version)
    changes["consent_at"] = case((same_consent, RETURNEE.c.consent_at), else_=new_row.excluded.consent_at)
    return new_row.on_conflict_do_update(index_elements=[RETURNEE.c.phone_hash], set_=changes)


def _consent_recorded(registered: FromClause) -> Insert:
    """A consent record for the returnee in `registered`, if the upsert has just set their consent."""
    stamp = _value("consent_at")
    given = select(registered.c.id, _value("consent_version"), true(), _CHANNEL, _AGENT, stamp)
    return insert(CONSENTS).from_select(
        ["returnee_id", "version", "granted", "channel", "agent_id", "at"],
        given.where(registered.c.consent_at == stamp),
    )


@lru_cache(maxsize=1)
def _consent_recorded_in_table() -> Insert:
    """After the upsert, in the same transaction: read back from the returnee's row."""
    row = select(RETURNEE.c.id, RETURNEE.c.consent_at).where(RETURNEE.c.phone_hash == _value("phone_hash"))
    return _consent_recorded(row.subquery())


@lru_cache(maxsize=4)
def _registration_with_session(columns: tuple[str, ...], session_columns: tuple[str, ...]) -> Select:
    """The upsert, the consent record and the session's row, as one PostgreSQL statement."""
    upserted = _registration("postgresql", columns).returning(RETURNEE.c.id, RETURNEE.c.consent_at)
    registered = upserted.cte("registered")
    session_row = (
        dialect_insert(SESSIONS, "postgresql")
        .values(
            {name: bindparam(_SESSION_PARAM + name, type_=SESSIONS.c[name].type) for name in session_columns}
        )
        .on_conflict_do_nothing()
    )
    return select(registered.c.id).add_cte(
        _consent_recorded(registered).cte("recorded"), session_row.cte("session_row")
    )


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
