"""The USSD webhook: Africa's Talking posts one form per step and reads `CON `/`END ` text back.

The request path is short on purpose: validate, read the session from Redis, run the pure
engine, claim the new state, then perform effects and log the step in one transaction.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from config import Settings
from flows.engine import Engine, KeepMissing, Reply, State, StepResult
from flows.i18n import DEFAULT_LANGUAGE, _
from flows.text import to_ussd
from models import Referral, Returnee, UssdSession, UssdStep
from models import returnee as returnees
from models.base import utcnow
from models.db import get_session, insert_ignore
from models.phone import InvalidPhone, phone_hash, to_e164
from services.referrals import NotReferable
from web.effects import Performed, perform
from web.ussd_store import UssdStore
from workers.queues import enqueue_sms

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)

UNAVAILABLE = _("Service unavailable. Please try again later.")
REGISTER_FIRST = _("Please register first: dial again and choose Register.")
MAX_FIELD = {"sessionId": 100, "serviceCode": 40, "phoneNumber": 32, "networkCode": 10, "text": 2000}
MAX_RACES = 3


class BadRequest(ValueError):
    """The gateway's form is not one we can act on; the message says why."""


def plain(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="text/plain")


def parse_form(form: dict[str, str], settings: Settings) -> dict[str, str]:
    """Check the gateway's fields; return them with the phone in E.164."""
    for name in ("sessionId", "serviceCode", "phoneNumber"):
        if not form.get(name, "").strip():
            raise BadRequest(f"missing field {name}")
    for name, limit in MAX_FIELD.items():
        if len(form.get(name, "")) > limit:
            raise BadRequest(f"field {name} is longer than {limit} characters")
    try:
        e164 = to_e164(form["phoneNumber"], settings.default_region_code)
    except InvalidPhone as exc:
        raise BadRequest(f"phoneNumber is not a valid phone number ({exc})") from None
    return {
        "session_id": form["sessionId"].strip(),
        "service_code": form["serviceCode"].strip(),
        "network_code": form.get("networkCode", "").strip()[:10],
        "text": form.get("text", ""),
        "phone": e164,
    }


@bp.post("/ussd")
def ussd() -> Response:
    started = time.perf_counter()
    settings: Settings = current_app.extensions["sira.settings"]
    try:
        fields = parse_form(request.form.to_dict(), settings)
    except BadRequest as exc:
        return plain(str(exc), 400)
    engine: Engine = current_app.extensions["sira.engine"]
    store: UssdStore = current_app.extensions["sira.ussd_store"]
    digest = phone_hash(fields["phone"], settings.phone_hash_key)
    session = get_session()
    try:
        reply = _step(engine, store, session, fields, digest, started)
    except SQLAlchemyError:
        session.rollback()
        log.exception("database unavailable during a USSD step")
        reply = Reply(to_ussd(engine.catalogs.gettext(DEFAULT_LANGUAGE, UNAVAILABLE)), end=True)
    except NotReferable as exc:
        session.rollback()
        log.info("USSD referral refused: %s", exc)
        reply = Reply(to_ussd(engine.catalogs.gettext(DEFAULT_LANGUAGE, REGISTER_FIRST)), end=True)
    return plain(reply.wire)


def _step(
    engine: Engine, store: UssdStore, session: Session, fields: dict[str, str], digest: str, started: float
) -> Reply:
    session_id = fields["session_id"]
    for _attempt in range(MAX_RACES):
        loaded = store.load(session_id, digest)
        previous = State.from_json(loaded.state.to_json()) if loaded.state else None
        state = loaded.state or _start(engine, session, session_id, digest, loaded.suspended)
        result = engine.feed(state, fields["text"])
        if not result.advanced:
            return result.reply
        won = store.save(session_id, digest, loaded.version, result.state) if loaded.available else None
        if won is False:
            continue
        done = Performed(digest, fields["phone"], current_app.extensions["sira.sms_texts"])
        try:
            reply = _commit(session, fields, done, result, is_new=previous is None, started=started)
        except (SQLAlchemyError, NotReferable):
            if won:
                store.restore(session_id, digest, _next(loaded.version), previous)
            raise
        settings = current_app.extensions["sira.settings"]
        enqueue_sms(current_app.extensions["sira.redis"], done.sms_ids, settings.sms_retry_intervals)
        if reply != result.reply and won:
            result.state.reply = reply.text
            store.save(session_id, digest, _next(loaded.version), result.state)
        return reply
    log.warning("a USSD session lost %d races in a row", MAX_RACES)
    latest = store.load(session_id, digest).state
    if latest is None:
        raise RuntimeError("USSD state vanished during a race")
    return Reply(latest.reply, latest.ended)


def _next(version: str) -> str:
    return str(int(version or 0) + 1)


def _start(engine: Engine, session: Session, session_id: str, digest: str, suspended: State | None) -> State:
    """A new session: what the database knows of this phone decides the first screen.

    A session whose state was lost (Redis down or flushed) is rebuilt from the gateway's history,
    so it must start from what was known when it began, not from what its own steps changed.
    """
    origin = session.scalar(select(UssdSession.origin).where(UssdSession.session_id == session_id))
    returnee = returnees.find_by_phone_hash(session, digest)
    if origin is not None:
        state = engine.start({"registered": origin.get("registered", "")}, origin.get("language"))
        state.facts["referrals"] = _referrals(session, returnee) if returnee else []
        return state
    if returnee is None:
        return engine.start({}, None, suspended)
    facts: dict[str, object] = {"registered": "1" if returnee.is_registered else ""}
    if returnee.is_registered:
        facts["referrals"] = _referrals(session, returnee)
    return engine.start(facts, returnee.language, suspended)


def _referrals(session: Session, returnee: Returnee) -> list[dict[str, str]]:
    """The returnee's latest referrals, for "My requests" (code, need, status only)."""
    rows = session.scalars(
        select(Referral).where(Referral.returnee_id == returnee.id).order_by(Referral.id.desc()).limit(20)
    )
    return [{"code": r.code, "category": r.requested_category, "status": r.status} for r in rows]


def _commit(
    session: Session,
    fields: dict[str, str],
    done: Performed,
    result: StepResult,
    is_new: bool,
    started: float,
) -> Reply:
    """Perform the effects and log the step in one transaction; return the reply, filled in."""
    session_id = fields["session_id"]
    state = result.state
    for effect in result.effects:
        perform(effect, session, done)
    reply = (
        Reply(result.reply.text.format_map(KeepMissing(done.params)), result.reply.end)
        if done.params
        else result.reply
    )
    now = utcnow()
    if is_new:
        insert_ignore(
            session,
            UssdSession,
            session_id=session_id,
            phone_hash=done.phone_digest,
            service_code=fields["service_code"],
            network_code=fields["network_code"] or None,
            language=state.answers.get("language"),
            origin={
                "language": state.origin[1] if state.origin else None,
                "registered": state.facts.get("registered", ""),
            },
            started_at=now,
        )
    last_input = fields["text"].rsplit("*", 1)[-1] if fields["text"] else ""
    insert_ignore(
        session,
        UssdStep,
        session_id=session_id,
        seq=state.inputs,
        user_input=last_input[:200],
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
    return reply


EVENT_FIELDS = ("status", "networkCode", "serviceCode", "durationInMillis", "hopsCount", "errorMessage",
                "cost", "date", "lastAppResponse")  # fmt: skip


@bp.post("/ussd/events")
def ussd_events() -> Response:
    """End-of-session notice: stored with the session; always 200 so the gateway does not retry."""
    form = request.form
    session_id = form.get("sessionId", "").strip()[:100]
    report = {name: form.get(name, "")[:200] for name in EVENT_FIELDS if name in form}
    session = get_session()
    try:
        found = session.execute(
            update(UssdSession)
            .where(UssdSession.session_id == session_id)
            .values(
                end_status=report.get("status", "")[:20] or None,
                end_duration_ms=_int(report.get("durationInMillis")),
                end_hops=_int(report.get("hopsCount")),
                end_error=report.get("errorMessage") or None,
                end_report=report,
            )
        ).rowcount
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not store a USSD end-of-session notice")
        return plain("not stored", 200)
    if not found:
        log.info("end-of-session notice for an unknown USSD session")
    return plain("ok")


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None
