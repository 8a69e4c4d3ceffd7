"""The USSD webhook: Africa's Talking posts one form per step and reads `CON `/`END ` text back.

A thin adapter: it checks AT's form, hands a neutral step to the conversation
(services/converse.py, which every USSD transport shares) and renders its reply as AT's text.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Blueprint, Response, request
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from config import Settings
from flows.i18n import _
from gateway.ussd import StepRefused, UssdReply, UssdStep
from infra.forgetting import begun_before_erasure, erasure_times
from models import UssdSession
from models.base import utcnow
from models.db import insert_ignore
from models.phone import InvalidPhone, PhoneNumber, to_e164
from services.converse import Converse, wire
from web import plain
from web.context import sira
from web.db import get_session
from web.validation import DIGITS, ID, PHONE, SERVICE_CODE, Field, Invalid, check, is_text

log = logging.getLogger(__name__)
bp = Blueprint("ussd", __name__)

UNREADABLE = _("Sorry, we could not read your answer. Please dial again.")
MAX_TEXT = 2000
FIELDS = (
    Field("sessionId", 100, ID, required=True),
    Field("serviceCode", 40, SERVICE_CODE, required=True),
    Field("phoneNumber", 32, PHONE, required=True, reason="is not a valid phone number"),
    Field("networkCode", 10, DIGITS),
)
MAX_REPORTED = 2**31 - 1  # hops and milliseconds the gateway reports fit an INTEGER column


class BadRequest(ValueError):
    """The gateway's form is not one we can act on; the message says why."""


class Unreadable(BadRequest):
    """A well-formed request whose text a person may have typed but we cannot take: a polite END."""


def parse_form(form: dict[str, str], settings: Settings) -> UssdStep:
    """Check the gateway's fields; the step they make, with the phone in E.164."""
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
    return UssdStep(
        session_id=checked["sessionId"].strip(),
        phone=e164,
        service_code=checked["serviceCode"].strip(),
        text=text,
        cumulative=True,
        network=checked["networkCode"].strip(),
        transport="at",
    )


@bp.post("/ussd")
def ussd() -> Response:
    converse: Converse = sira().converse
    try:
        step = parse_form(request.form.to_dict(), converse.settings)
    except Unreadable as exc:
        log.info("USSD step refused: %s", exc)
        return plain(wire(converse.polite(UNREADABLE)))
    except BadRequest as exc:
        return plain(str(exc), 400)
    try:
        reply: UssdReply = converse(step)
    except StepRefused as exc:
        return plain(str(exc), 400)
    return plain(wire(reply))


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
    settings: Settings = sira().settings
    try:
        digest = PhoneNumber.parse(form.get("phoneNumber", ""), settings).digest
    except InvalidPhone:
        digest = ""
    duration = _int(report.get("durationInMillis"))
    started = utcnow() - timedelta(milliseconds=duration or 0)
    session = get_session()
    try:
        # The session's row may still be in the transcript buffer: create it if need be, unless
        # the phone was erased after the session began (the row would bring its steps back).
        if not _erased_since(sira().redis, digest, started):
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
