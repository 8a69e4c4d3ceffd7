"""Kannel's callbacks: its delivery reports (the `dlr-url` of each send) and incoming SMS (the
`get-url` or `post-url` of an sms-service), served under /sms/kannel behind the same callback
secret and guards as Africa's Talking's.

Kannel fills the URLs it calls from escapes of our choosing (README, "The Kannel adapter"):
each callback is checked here, turned into the fields Africa's Talking's callbacks carry, and
handled by the very same code (web/sms.py), so a provider's `OK` or a returnee's `STOP` means
the same whichever gateway brought it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, request

from gateway.kannel import CALLBACK_PREFIX as PREFIX
from gateway.kannel import DLR_STATUSES, delivery_status
from web import plain
from web.sms import sender, take_delivery_report, take_incoming
from web.validation import DIGITS, ID, PHONE, SHORT_CODE, Field, Invalid, check, is_text

__all__ = ["PREFIX", "bp"]

bp = Blueprint("sms_kannel", __name__)  # served under PREFIX (app.py)

# dlr-url: ...?id=<our message id>&type=%d
DELIVERY_FIELDS = (Field("id", 100, ID, required=True), Field("type", 2, DIGITS, required=True))
# get-url: ...?from=%p&to=%P&text=%a&id=%I&time=%T (post-url: the text is the body instead)
INCOMING_FIELDS = (
    Field("from", 32, PHONE, required=True, reason="is not a phone number"),
    Field("to", 20, SHORT_CODE, required=True),
    Field("id", 100, ID, required=True),
    Field("time", 12, DIGITS, required=True),
)
TEXT = Field("text", 1600, required=True, blank_ok=True)
FAILED = frozenset({"Failed", "Rejected"})
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC).timestamp()


@bp.route("/delivery", methods=["GET", "POST"])
def delivery() -> Response:
    """Kannel's delivery report for one of our sends: its DLR type moves the message's status."""
    try:
        form = check(request.values, DELIVERY_FIELDS)
    except Invalid as exc:
        return plain(str(exc), 400)
    status = delivery_status(int(form["type"]))
    if status is None:
        known = ", ".join(str(t) for t in DLR_STATUSES)
        return plain(f"type {form['type']} is not one of Kannel's DLR types ({known})", 400)
    reason = f"Kannel DLR type {form['type']}" if status in FAILED else ""
    return take_delivery_report(form["id"].strip(), status, reason)


@bp.route("/incoming", methods=["GET", "POST"])
def incoming() -> Response:
    """An SMS to our number, relayed by an sms-service; handled exactly as Africa's Talking's."""
    try:
        form = check(request.values, INCOMING_FIELDS)
        text = check({"text": _text()}, (TEXT,))["text"]
        e164 = sender(form["from"])
        sent_at = _time(form["time"])
    except Invalid as exc:
        return plain(str(exc), 400)
    fields = {"id": form["id"].strip(), "from": e164, "to": form["to"].strip(), "text": text, "linkId": "",
              "date": sent_at.isoformat()}  # fmt: skip
    return take_incoming(fields)


def _text() -> str | None:
    """The text from `text=%a` (get-url), else the body Kannel's post-url sends as text/plain."""
    if "text" in request.values:
        return request.values["text"]
    if request.method != "POST" or request.mimetype != "text/plain":
        return None
    charset = request.mimetype_params.get("charset", "utf-8")
    try:
        body = request.get_data(cache=True).decode(charset)
    except (LookupError, UnicodeDecodeError):
        raise Invalid(f"text is not valid {charset[:20]}") from None
    if not is_text(body):
        raise Invalid("text has characters that are not allowed")
    return body


def _time(value: str) -> datetime:
    """Kannel's %T: when the message was sent, in seconds since 1970."""
    seconds = int(value)
    if not 0 < seconds < LATEST_TIME:
        raise Invalid(f"time {value[:12]} is not a plausible Unix time")
    return datetime.fromtimestamp(seconds, UTC)
