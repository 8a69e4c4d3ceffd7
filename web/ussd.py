"""The USSD webhook: Africa's Talking posts one form per step and reads `CON `/`END ` text back.

The request path is short on purpose: validate, read the session from Redis, run the pure
engine, commit the effects if the step has any, then claim the new state and buffer the step's
transcript line in one Redis call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Blueprint, Flask, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings
from flows.engine import Engine, KeepMissing, Reply, State, StepResult
from flows.i18n import DEFAULT_LANGUAGE, _
from flows.sms import SmsTexts
from flows.text import to_ussd
from models import Referral, UssdSession, UssdStep
from models import returnee as returnees
from models.base import utcnow
from models.db import insert_ignore
from models.directory import Category
from models.phone import InvalidPhone, phone_hash, to_e164
from services.referrals import NotReferable
from services.sealing import Sealer
from services.transcripts import begun_before_erasure, erasure_times, step_record
from web import plain
from web.db import get_session, rollback_session
from web.effects import Performed, perform
from web.limits import RateLimit
from web.ussd_store import DROP, REFRESH, Loaded, UssdStore
from web.validation import DIGITS, ID, PHONE, SERVICE_CODE, Field, Invalid, check, is_text
from workers.queues import enqueue_sms

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)

UNAVAILABLE = _("Service unavailable. Please try again later.")
REGISTER_FIRST = _("Please register first: dial again and choose Register.")
UNREADABLE = _("Sorry, we could not read your answer. Please dial again.")
SLOW_DOWN = _("Too many requests from your number. Please wait a few minutes and dial again.")
ERASED = _("Your data has been erased.")
MAX_TEXT = 2000
FIELDS = (
    Field("sessionId", 100, ID, required=True),
    Field("serviceCode", 40, SERVICE_CODE, required=True),
    Field("phoneNumber", 32, PHONE, required=True, reason="is not a valid phone number"),
    Field("networkCode", 10, DIGITS),
)
MAX_RACES = 3
MAX_REPORTED = 2**31 - 1  # hops and milliseconds the gateway reports fit an INTEGER column


class BadRequest(ValueError):
    """The gateway's form is not one we can act on; the message says why."""


class Unreadable(BadRequest):
    """A well-formed request whose text a person may have typed but we cannot take: a polite END."""


def parse_form(form: dict[str, str], settings: Settings) -> dict[str, str]:
    """Check the gateway's fields; return them with the phone in E.164."""
    try:
        checked = check(form, FIELDS)
    except Invalid as exc:
        raise BadRequest(str(exc)) from None
    try:
        e164 = to_e164(checked["phoneNumber"], settings.default_region_code)
    except InvalidPhone as exc:
        raise BadRequest(f"phoneNumber is not a valid phone number ({exc})") from None
    text = form.get("text", "")
    if len(text) > MAX_TEXT or not is_text(text):
        raise Unreadable(f"text is longer than {MAX_TEXT} characters or has control characters")
    return {
        "session_id": checked["sessionId"].strip(),
        "service_code": checked["serviceCode"].strip(),
        "network_code": checked["networkCode"].strip(),
        "text": text,
        "phone": e164,
    }


@dataclass(frozen=True)
class Webhook:
    """What a step needs from the app, gathered once: one lookup per request instead of a dozen."""

    settings: Settings
    engine: Engine
    store: UssdStore
    step_sealer: Sealer
    redis: Redis
    texts: SmsTexts
    limit: RateLimit

    @classmethod
    def of(cls, app: Flask) -> Webhook:
        ext = app.extensions
        return cls(ext["sira.settings"], ext["sira.engine"], ext["sira.ussd_store"], ext["sira.step_sealer"],
                   ext["sira.redis"], ext["sira.sms_texts"], ext["sira.ussd_limit"])  # fmt: skip


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    state.app.extensions["sira.ussd"] = Webhook.of(state.app)


@bp.post("/ussd")
def ussd() -> Response:
    started = time.perf_counter()
    hook: Webhook = current_app.extensions["sira.ussd"]
    try:
        fields = parse_form(request.form.to_dict(), hook.settings)
    except Unreadable as exc:
        log.info("USSD step refused: %s", exc)
        return plain(_polite(hook.engine, UNREADABLE).wire)
    except BadRequest as exc:
        return plain(str(exc), 400)
    digest = phone_hash(fields["phone"], hook.settings.phone_hash_key)
    try:
        reply = _step(hook, fields, digest, started)
    except BadRequest as exc:
        return plain(str(exc), 400)
    except SQLAlchemyError:
        rollback_session()
        log.exception("database unavailable during a USSD step")
        reply = _unavailable(hook.engine)
    except Exception:  # a returnee must get a polite END, never a gateway error
        rollback_session()
        if hook.settings.raise_step_errors:  # under test, a crash inside a step fails the test
            raise
        log.exception("unexpected failure during a USSD step")
        reply = _unavailable(hook.engine)
    return plain(reply.wire)


def _step(hook: Webhook, fields: dict[str, str], digest: str, started: float) -> Reply:
    """Run one step; the state is saved only once what the step did is committed.

    A step with effects (registration, a referral) commits them first and then saves the final
    screen, so that a gateway retry never sees a screen whose effects are not in the database.
    The effects are idempotent, so a retry racing the first request does no harm. Every step
    is logged through the transcript buffer, in the same Redis call that saves the state; the
    database only when that call did not save it. The database session is opened only by a
    step that needs it (effects, a phone whose profile is not cached, Redis down).
    """
    engine, store = hook.engine, hook.store
    session_id, text = fields["session_id"], fields["text"]
    races, remembered = 0, True
    while races < MAX_RACES:
        loaded = store.load(session_id, digest, with_resume=not text, remembered=remembered, limit=hook.limit)
        if loaded.foreign:  # a gateway fault, or a forged request: either way, touch nothing
            raise BadRequest("sessionId belongs to another phoneNumber")
        if loaded.erased is not None:
            return _polite(engine, ERASED, loaded.erased)
        if loaded.limited:
            log.info("USSD step refused: the phone is over its rate limit")
            return _polite(engine, SLOW_DOWN, loaded.state.language if loaded.state else None)
        state = loaded.state or _start(engine, session_id, digest, loaded, text)
        result = engine.feed(state, text)
        if not result.advanced:
            return result.reply
        if result.effects and loaded.remembered:
            remembered = False  # effects are performed from the state in Redis, never from a copy
            continue
        first = loaded.state is None
        if result.effects:
            try:
                reply, done = _commit_effects(hook, fields, digest, result)
            except NotReferable as exc:  # no consent on record: nothing may be shared
                rollback_session()
                log.info("USSD referral refused: %s", exc)
                return Reply(to_ussd(engine.catalogs.gettext(state.language, REGISTER_FIRST)), end=True)
            state.reply = reply.text
            if "registered" in done.profile_changes:  # the rest of this session knows it too
                state.facts["registered"] = "1" if done.profile_changes["registered"] else ""
            buffered = _buffered_step(hook, fields, digest, state, reply, started, first)
            profile, mode = _profile_after(state, done, len(result.effects))
            saved = (
                store.save(session_id, digest, loaded.version, state, buffered, profile, mode, hook.limit)
                if loaded.available
                else None
            )
            if not saved:  # lost a race, or Redis is down: the step is logged all the same
                _log_step(get_session(), fields, digest, state, reply, started)
            return reply
        buffered = _buffered_step(hook, fields, digest, state, result.reply, started, first)
        profile = _profile_to_cache(loaded, state)
        won = (
            store.save(session_id, digest, loaded.version, state, buffered, profile, limit=hook.limit)
            if loaded.available
            else None
        )
        if won is False:
            races += 1
            continue  # another request advanced the session first: read it again
        if won is None:  # Redis is down: the transcript line goes to the database instead
            _log_step(get_session(), fields, digest, state, result.reply, started)
        return result.reply
    log.warning("a USSD session lost %d races in a row", MAX_RACES)
    latest = store.load(session_id, digest, with_resume=False, remembered=False).state
    return Reply(latest.reply, latest.ended) if latest else _unavailable(engine)


def _commit_effects(
    hook: Webhook, fields: dict[str, str], digest: str, result: StepResult
) -> tuple[Reply, Performed]:
    """Perform the effects, with the session's row, in one transaction; then queue their SMS.

    The session's row goes with the effects because it holds what was known when the session
    began: a session whose state is lost is replayed from there, not from what it changed.
    """
    session = get_session()
    done = Performed(digest, fields["phone"], hook.texts, hook.settings.phone_hash_key)
    for effect in result.effects:
        perform(effect, session, done)
    insert_ignore(session, UssdSession, **_session_row(fields, digest, result.state, utcnow()))
    session.commit()
    enqueue_sms(
        hook.redis, done.sms_ids, hook.settings.sms_retry_intervals, hook.settings.sms_job_timeout_seconds
    )
    reply = result.reply
    if done.params:
        reply = Reply(reply.text.format_map(KeepMissing(done.params)), reply.end)
    return reply, done


def _unavailable(engine: Engine) -> Reply:
    return _polite(engine, UNAVAILABLE)


def _polite(engine: Engine, msgid: str, language: str | None = None) -> Reply:
    """An END in the session's language if known, else the default one."""
    return Reply(to_ussd(engine.catalogs.gettext(language or DEFAULT_LANGUAGE, msgid)), end=True)


def _profile_to_cache(loaded: Loaded, state: State) -> dict | None:
    """On a fresh dial read from the database, cache what was read (unless this step changes it)."""
    if loaded.state is not None or loaded.profile is not None or not state.origin or not state.origin[1]:
        return None
    return {"language": state.origin[1], "registered": bool(state.facts.get("registered")),
            "referrals": state.facts.get("referrals", [])}  # fmt: skip


def _profile_after(state: State, done: Performed, effects: int) -> tuple[dict | None, str]:
    """After effects: the cached profile as they left it, when every one of them says how."""
    if effects == 0 or done.mirrored < effects:
        return None, DROP
    profile = {"language": state.language, "registered": bool(state.facts.get("registered")),
               "referrals": state.facts.get("referrals", []), **done.profile_changes}  # fmt: skip
    return profile, REFRESH


def _buffered_step(
    hook: Webhook,
    fields: dict[str, str],
    digest: str,
    state: State,
    reply: Reply,
    started: float,
    first: bool,
) -> bytes:
    """The step, sealed, for the transcript buffer written in the same Redis call as the state."""
    at = utcnow().isoformat()
    record = step_record(
        fields["session_id"], state.inputs, _last_input(fields["text"]), reply.wire,
        round((time.perf_counter() - started) * 1000, 2), at, state.screen if state.ended else None,
        _session_row(fields, digest, state, at) if first else None,
        state.answers.get("language") if state.ended else None,
    )  # fmt: skip
    return hook.step_sealer.seal(record)


def _last_input(text: str) -> str:
    return text.rsplit("*", 1)[-1][:200] if text else ""


def _start(engine: Engine, session_id: str, digest: str, loaded: Loaded, text: str) -> State:
    """A new session: what is known of this phone decides the first screen.

    A session whose state was lost (Redis down or flushed) is rebuilt from the gateway's history,
    so it must start from what was known when it began, not from what its own steps changed:
    the session row keeps that origin from the first step that changed anything.
    """
    if text:  # no state but inputs: a dial-through, or a session whose state was lost
        origin = get_session().scalar(
            select(UssdSession.origin).where(
                UssdSession.session_id == session_id, UssdSession.phone_hash == digest
            )
        )
        if origin is not None:
            profile = loaded.profile or _profile(digest)
            facts = {
                "registered": origin.get("registered", ""),
                "referrals": (profile or {}).get("referrals", []),
            }
            return engine.start(facts, origin.get("language"))
    profile = loaded.profile or _profile(digest)
    if profile is None:
        return engine.start({}, None, loaded.suspended)
    facts = {"registered": "1" if profile["registered"] else "", "referrals": profile["referrals"]}
    return engine.start(facts, profile["language"], loaded.suspended)


def _profile(digest: str) -> dict | None:
    """What a dial needs to know of a phone, from the database (then cached with the state)."""
    session = get_session()
    found = returnees.profile(session, digest)
    if found is None:
        return None
    referrals = _referrals(session, found.id) if found.registered else []
    return {"language": found.language, "registered": found.registered, "referrals": referrals}


def _referrals(session: Session, returnee_id: int) -> list[dict[str, str]]:
    """The returnee's latest referrals, for "My requests": code, status and the need's neutral
    label (as in SMS: health and psychosocial needs read "support" on a phone others may hold)."""
    rows = session.execute(
        select(Referral.code, Category.sms_label, Referral.status)
        .join(Category, Category.code == Referral.requested_category)
        .where(Referral.returnee_id == returnee_id)
        .order_by(Referral.id.desc())
        .limit(20)
    )
    return [{"code": code, "category": category, "status": status} for code, category, status in rows]


def _session_row(fields: dict[str, str], digest: str, state: State, at: str | datetime) -> dict[str, object]:
    """The session's row: who (hashed), where from, and what was known when it began."""
    return {
        "session_id": fields["session_id"],
        "phone_hash": digest,
        "service_code": fields["service_code"],
        "network_code": fields["network_code"] or None,
        "language": state.answers.get("language"),
        "origin": {
            "language": state.origin[1] if state.origin else None,
            "registered": state.facts.get("registered", ""),
        },
        "started_at": at,
    }


def _log_step(
    session: Session, fields: dict[str, str], digest: str, state: State, reply: Reply, started: float
) -> None:
    """Write the step to the database directly, when the buffer could not take it."""
    session_id = fields["session_id"]
    now = utcnow()
    insert_ignore(session, UssdSession, **_session_row(fields, digest, state, now))
    insert_ignore(
        session,
        UssdStep,
        session_id=session_id,
        seq=state.inputs,
        user_input=_last_input(fields["text"]),
        screen=reply.wire,
        server_ms=round((time.perf_counter() - started) * 1000, 2),
        at=now,
    )
    if state.ended:
        session.execute(
            update(UssdSession)
            .where(UssdSession.session_id == session_id)
            .values(outcome=state.screen, ended_at=now, language=state.answers.get("language"))
        )
    session.commit()


EVENT_FIELDS = ("status", "networkCode", "serviceCode", "durationInMillis", "hopsCount", "errorMessage",
                "cost", "date", "lastAppResponse")  # fmt: skip


@bp.post("/ussd/events")
def ussd_events() -> Response:
    """End-of-session notice: stored with the session; always 200 so the gateway does not retry."""
    form = request.form
    try:
        checked = check(form, (Field("sessionId", 100, ID, required=True),
                               *(Field(name, 200) for name in EVENT_FIELDS)))  # fmt: skip
    except Invalid as exc:
        log.info("end-of-session notice ignored: %s", exc)
        return plain(f"ignored: {exc}")
    session_id = checked["sessionId"].strip()
    report = {name: checked[name] for name in EVENT_FIELDS if name in form}
    settings: Settings = current_app.extensions["sira.settings"]
    try:
        digest = phone_hash(
            to_e164(form.get("phoneNumber", ""), settings.default_region_code), settings.phone_hash_key
        )
    except InvalidPhone:
        digest = ""
    duration = _int(report.get("durationInMillis"))
    started = utcnow() - timedelta(milliseconds=duration or 0)
    session = get_session()
    try:
        # The session's row may still be in the transcript buffer: create it if need be, unless
        # the phone was erased after the session began (the row would bring its steps back).
        if not _erased_since(current_app.extensions["sira.redis"], digest, started):
            insert_ignore(session, UssdSession, session_id=session_id, phone_hash=digest,
                          service_code=report.get("serviceCode", "")[:40], started_at=started)  # fmt: skip
        session.execute(
            update(UssdSession)
            .where(UssdSession.session_id == session_id)
            .values(
                end_status=report.get("status", "")[:20] or None,
                end_duration_ms=duration,
                end_hops=_int(report.get("hopsCount")),
                end_error=report.get("errorMessage") or None,
                end_report=report,
            )
        )
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not store a USSD end-of-session notice")
        return plain("not stored", 200)
    return plain("ok")


def _int(value: str | None) -> int | None:
    """A count or a duration as the gateway reports it; None if it is not one a column can hold."""
    try:
        number = int(float(value)) if value else None
    except (ValueError, OverflowError):
        return None
    return number if number is not None and 0 <= number <= MAX_REPORTED else None


def _erased_since(redis: Redis, digest: str, started: datetime) -> bool:
    """Whether the phone was erased after `started` (if Redis cannot say, it was not)."""
    try:
        erased = erasure_times(redis, [digest]).get(digest) if digest else None
    except RedisError:
        return False
    return begun_before_erasure(started.timestamp(), erased)
