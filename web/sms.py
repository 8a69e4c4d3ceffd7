"""SMS callbacks from the gateway: incoming messages, opt-outs and delivery reports.

Each form is checked here (web/validation.py); what to do with it lives in services/inbound.py,
shared with the replay of the spool, where callbacks go while the database is down.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from gateway import scoped_id
from infra import spool
from models.base import utcnow
from models.phone import InvalidPhone, phone_hash, to_e164
from services.inbound import ReplyLimit, opt_out, receive
from services.inbound import delivery_report as delivery_report_of
from web import plain
from web.context import sira
from web.db import get_session
from web.validation import ID, PHONE, SHORT_CODE, WORD, Field, Invalid, check

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__)

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


@bp.post("/delivery")
def delivery_report() -> Response:
    """Record a delivery report; statuses only move forward; unknown ids are answered 200.

    With the database down the report goes to the spool (answered 200) and is applied later.
    """
    return apply_delivery(request.form)


def apply_delivery(raw: Mapping[str, str], kind: str = "africastalking") -> Response:
    """Check and record a delivery report in AT's fields, whichever gateway's callback brought it;
    `kind` is that gateway's, whose ids are scoped as the send job stored them."""
    try:
        form = check(raw, DELIVERY_FIELDS)
    except Invalid as exc:
        return plain(str(exc), 400)
    gateway_id = scoped_id(kind, form["id"].strip())
    return take_delivery_report(gateway_id, form["status"].strip(), form.get("failureReason", ""))


def take_delivery_report(gateway_id: str, status: str, reason: str) -> Response:
    """Apply a checked delivery report (from any gateway), or spool it while the database is down."""
    fields = {
        "id": gateway_id,
        "status": status,
        "failureReason": reason,
        "received_at": utcnow().isoformat(),
    }
    session = get_session()
    try:
        answer = delivery_report_of(session, fields)
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not store a delivery report")
        return _spool(spool.DELIVERY, fields)
    if answer == "unknown id":
        log.info("delivery report for an unknown message id %s", gateway_id)
    return plain(answer)


def _spool(kind: str, fields: dict[str, str]) -> Response:
    """Keep a callback the database could not take; 503 only if even the spool cannot."""
    try:
        sira().spool.append(kind, fields)
    except OSError:
        log.exception("could not spool a %s callback either", kind)
        return plain("try again later", 503)
    return plain("ok: spooled")


def parse_date(value: str) -> datetime:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(value.strip(), fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise Invalid(f"date {value[:40]!r} is not like 2017-05-03T06:04:45Z or 2017-05-03 06:04:45")


def sender(value: str) -> str:
    try:
        return to_e164(value, sira().settings.default_region_code)
    except InvalidPhone:
        raise Invalid("from is not a phone number") from None


@bp.post("/incoming")
def incoming() -> Response:
    """Store every message once (by the gateway's id), then act on it and queue the replies.

    A sender over its rate limit is stored but neither acted on nor answered: a flood must not
    make us send a flood. A provider's registered number is not limited (see services/inbound).
    """
    return apply_incoming(request.form)


def apply_incoming(raw: Mapping[str, str], kind: str = "africastalking") -> Response:
    """Check, store and act on an incoming SMS in AT's fields, whichever gateway's callback brought it;
    its id is scoped by the gateway's `kind`, so that two gateways' messages never pass for one."""
    try:
        form = check(raw, INCOMING_FIELDS)
        e164 = sender(form["from"])
        sent_at = parse_date(form["date"])
    except Invalid as exc:
        return plain(str(exc), 400)
    fields = {"id": scoped_id(kind, form["id"].strip()), "from": e164, "to": form["to"].strip(),
              "text": form["text"], "linkId": form.get("linkId") or "", "date": sent_at.isoformat()}  # fmt: skip
    return take_incoming(fields)


def take_incoming(fields: dict[str, str]) -> Response:
    """Store and act on a checked incoming SMS (from any gateway); `fields` as services.inbound.receive
    takes them, but for `received_at`. Spooled while the database is down."""
    fields = {**fields, "received_at": utcnow().isoformat()}
    e164 = fields["from"]
    settings = sira().settings
    digest = phone_hash(e164, settings.phone_hash_key)
    limited = sira().sms_limit.hit(sira().redis, digest)
    if limited:
        fields["limited"] = "1"  # kept with the message if it is spooled, so its replay does not act either
    session = get_session()
    try:
        received = receive(session, fields, sira().sms_texts, settings.phone_hash_key,
                           ReplyLimit.from_settings(settings), act=not limited)  # fmt: skip
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not handle an incoming SMS")
        return _spool(spool.INCOMING, fields)
    if received.outcome is None:
        return plain("already handled")
    if received.outcome == "rate_limited":
        log.info("incoming SMS stored, not acted on: the sender is over its rate limit")
    sira().outbox.queue(received.sms_ids)
    store = sira().ussd_store
    store.forget_profile(*received.touched)
    if received.erased:
        store.forget_phone(received.erased)
    return plain(f"ok: {received.outcome}")


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
    fields = {"phoneNumber": e164, "received_at": utcnow().isoformat()}
    session = get_session()
    try:
        opt_out(session, fields, sira().settings.phone_hash_key)
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not record an opt-out")
        return _spool(spool.OPTOUT, fields)
    return plain("ok")
