"""SMS callbacks from the gateway: incoming messages, opt-outs and delivery reports."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from flows.sms_commands import parse
from models.base import utcnow
from models.db import insert_ignore
from models.messaging import InboundSms, OutboundSms
from models.phone import InvalidPhone, phone_hash, to_e164
from models.referral import Referral
from models.returnee import Returnee, get_or_create
from services.inbound import handle
from web import plain
from web.db import get_session
from web.validation import ID, PHONE, SHORT_CODE, WORD, Field, Invalid, check
from workers.queues import enqueue_sms

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__)


@bp.post("/delivery")
def delivery_report() -> Response:
    """Record a delivery report; statuses only move forward; unknown ids are answered 200."""
    try:
        form = check(request.form, DELIVERY_FIELDS)
    except Invalid as exc:
        return plain(str(exc), 400)
    gateway_id, status = form["id"].strip(), form["status"].strip()
    session = get_session()
    try:
        row = session.scalar(
            select(OutboundSms).where(OutboundSms.gateway_id == gateway_id).with_for_update()
        )
        if row is None:
            log.info("delivery report for an unknown message id %s", gateway_id)
            return plain("unknown id")
        moved = row.record_delivery(status, form.get("failureReason") or None, utcnow())
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not store a delivery report")
        return plain("try again later", 503)
    return plain("ok" if moved else "ignored: status does not move forward")


DELIVERY_FIELDS = (Field("id", 100, ID, required=True), Field("status", 40, WORD, required=True),
                   Field("failureReason", 200))  # fmt: skip
INCOMING_FIELDS = (
    Field("from", 32, PHONE, required=True, reason="is not a phone number"),
    Field("to", 20, SHORT_CODE, required=True),
    Field("text", 1600, required=True, blank_ok=True),
    Field("id", 100, ID, required=True),
    Field("date", 40, required=True),
    Field("linkId", 100, ID),
)
DATE_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S.%f")


def parse_date(value: str) -> datetime:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise Invalid(f"date {value[:40]!r} is not like 2017-05-03T06:04:45Z or 2017-05-03 06:04:45")


def sender(value: str) -> str:
    try:
        return to_e164(value, current_app.extensions["sira.settings"].default_region_code)
    except InvalidPhone:
        raise Invalid("from is not a phone number") from None


@bp.post("/incoming")
def incoming() -> Response:
    """Store every message once (by the gateway's id), then act on it and queue the replies."""
    try:
        form = check(request.form, INCOMING_FIELDS)
        e164 = sender(form["from"])
        sent_at = parse_date(form["date"])
    except Invalid as exc:
        return plain(str(exc), 400)
    settings = current_app.extensions["sira.settings"]
    digest = phone_hash(e164, settings.phone_hash_key)
    limited = current_app.extensions["sira.sms_limit"].hit(current_app.extensions["sira.redis"], digest)
    session = get_session()
    try:
        new_id = insert_ignore(
            session, InboundSms, gateway_id=form["id"].strip(), from_e164=e164, from_hash=digest,
            to=form["to"].strip(), text=form["text"], link_id=form.get("linkId") or None, sent_at=sent_at,
            received_at=utcnow(),
        )  # fmt: skip
        if new_id is None:
            session.rollback()
            return plain("already handled")
        message = session.get(InboundSms, new_id)
        if limited:  # kept for the coordinators, but a flood must not make us act or answer
            message.handled_as = "rate_limited"
            session.commit()
            log.info("incoming SMS stored, not acted on: the sender is over its rate limit")
            return plain("ok: rate_limited")
        parsed = parse(message.text)
        sms_ids = handle(session, message, parsed, current_app.extensions["sira.sms_texts"],
                         settings.phone_hash_key)  # fmt: skip
        outcome = message.handled_as
        touched = [digest] if message.sender_kind == "returnee" else _returnee_of(session, parsed.code)
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not handle an incoming SMS")
        return plain("try again later", 503)
    enqueue_sms(current_app.extensions["sira.redis"], sms_ids, settings.sms_retry_intervals)
    store = current_app.extensions["sira.ussd_store"]
    store.forget_profile(*touched)
    if outcome == "erased":
        store.forget_phone(digest)
    return plain(f"ok: {outcome}")


def _returnee_of(session: Session, code: str | None) -> list[str]:
    """The phone hash of the returnee whose referral a provider's message may have changed."""
    if not code:
        return []
    found = session.scalar(
        select(Returnee.phone_hash)
        .join(Referral, Referral.returnee_id == Returnee.id)
        .where(Referral.code == code)
    )
    return [found] if found else []


@bp.post("/optout")
def optout() -> Response:
    """The gateway's opt-out notice: the number gets no more non-essential SMS, as with STOP."""
    try:
        raw = check(request.form, (Field("phoneNumber", 32, PHONE, required=True),))["phoneNumber"]
    except Invalid as exc:
        return plain(str(exc), 400)
    try:
        e164 = sender(raw)
    except Invalid:
        return plain("phoneNumber is not a phone number", 400)
    session = get_session()
    try:
        returnee = get_or_create(
            session, phone_hash(e164, current_app.extensions["sira.settings"].phone_hash_key)
        )
        returnee.opted_out_at = returnee.opted_out_at or utcnow()
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not record an opt-out")
        return plain("try again later", 503)
    return plain("ok")
