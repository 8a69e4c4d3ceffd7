"""The emulator's Orange face: OAuth tokens, the send endpoint, the bundle, and incoming SMS.

It shares the emulator's messages, faults and delivery reporter with Africa's Talking's face, so
`/messages` and the inboxes show what either sent. Orange's own faults, set through `/faults`:
`orange_token_ttl` (seconds a token lives), `expire_tokens: true` (every token issued so far
gets a 401), `orange_balance` (SMS units left; 0 is a 403 like an exhausted bundle),
`throttle_next` with `retry_after_seconds` (429s), and the shared `fail_next`/`http_500_rate`
and `timeout_rate` (5xx and slow answers).
"""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from urllib.parse import unquote

import requests
from flask import Flask, Response, jsonify, request

from config import ROOT
from gateway.emulator.phones import PhoneSms, message_record, relay_from_phone
from gateway.emulator.reports import ORANGE_REQUESTS, DeliveryReporter
from gateway.emulator.state import EmulatorState
from gateway.segments import segment_count

# Our number on this face, for make run, the tests and the benches alike: sample data, like the
# directory's numbers.
LOCAL_SENDER_FILE = ROOT / "seed" / "orange_sender.txt"


@cache
def local_sender() -> str:
    """The ORANGE_SENDER_ADDRESS to use with this face (seed/orange_sender.txt)."""
    lines = (line.strip() for line in LOCAL_SENDER_FILE.read_text(encoding="utf-8").splitlines())
    return next(line for line in lines if line and not line.startswith("#"))


__all__ = ["add_orange_face", "local_sender"]

EXPIRED = {"code": 42, "message": "Expired credentials",
           "description": "The requested service needs credentials, and the ones provided were out-of-date."}  # fmt: skip


def add_orange_face(
    app: Flask,
    state: EmulatorState,
    reporter: DeliveryReporter,
    callback_base: str | None,
    reachable: Callable[[str], bool],
    short_code: str,
) -> None:
    """Register Orange's endpoints on the emulator app."""
    inbound = requests.Session()

    @app.post("/oauth/v3/token")
    def orange_token() -> tuple[Response, int]:
        if request.form.get("grant_type") != "client_credentials":
            return jsonify(error="unsupported_grant_type"), 400
        if not _basic_credentials(request.headers.get("Authorization", "")):
            return jsonify(
                error="invalid_client", error_description="The requested service needs credentials"
            ), 401
        value = secrets.token_urlsafe(24)
        ttl = state.faults_view()["orange_token_ttl"]
        state.issue_token(value, time.monotonic() + ttl)
        return jsonify(token_type="Bearer", access_token=value, expires_in=int(ttl) if ttl >= 1 else ttl), 200

    @app.post("/smsmessaging/v1/outbound/<path:sender>/requests")
    def orange_send(sender: str) -> Response | tuple[Response, int]:
        if not _authorised():
            return jsonify(EXPIRED), 401
        retry_after = state.take_throttle()
        if retry_after is not None:
            answer = jsonify(code=4003, message="Too many requests", description="Rate limit exceeded")
            answer.headers["Retry-After"] = f"{retry_after:g}"
            return answer, 429
        body = (request.get_json(silent=True) or {}).get("outboundSMSMessageRequest")
        if not isinstance(body, dict):
            return _service_error(
                "SVC0002", "Invalid input value for message part outboundSMSMessageRequest"
            ), 400
        address, text = body.get("address"), (body.get("outboundSMSTextMessage") or {}).get("message")
        if isinstance(address, list) and len(address) == 1:
            address = address[0]
        if not isinstance(address, str) or not isinstance(text, str) or not text:
            return _service_error("SVC0002", "Invalid input value for address or message"), 400
        if body.get("senderAddress") != unquote(sender):
            return _service_error("SVC0002", "senderAddress differs from the URL's"), 400
        number = address.removeprefix("tel:")
        if not address.startswith("tel:") or not reachable(number):
            return _service_error("SVC0004", "No valid addresses provided in message part address"), 400
        decision = state.decide(1)
        if decision.http_500:
            return jsonify(code=1, message="Internal error"), 500
        if decision.delay:
            time.sleep(decision.delay)
        parts = segment_count(text)
        if not state.spend(parts):
            return jsonify(requestError={"policyException": {
                "messageId": "POL3003", "text": "Insufficient credit: your SMS bundle is exhausted"}}), 403  # fmt: skip
        message_id = uuid.uuid4().hex
        sender_shown = body.get("senderName") or unquote(sender).removeprefix("tel:")
        record = message_record(message_id, number, sender_shown, text, status="Sent", direction="outbound",
                                gateway="orange")  # fmt: skip
        state.add(record, decision.generation)
        reporter.schedule(message_id, number, decision.delivery_failures[0], decision.generation, orange=True)
        answer = {key: body[key] for key in ("address", "senderAddress", "senderName", "outboundSMSTextMessage")
                  if key in body}  # fmt: skip
        answer["resourceURL"] = f"{ORANGE_REQUESTS}/{message_id}"
        return jsonify(outboundSMSMessageRequest=answer), 201

    @app.get("/sms/admin/v1/contracts")
    def orange_contracts() -> Response | tuple[Response, int]:
        if not _authorised():
            return jsonify(EXPIRED), 401
        units = state.faults_view()["orange_balance"]
        return jsonify([{"id": "emulator-contract", "country": "MLI", "offerName": "SMS_OCB",
                         "availableUnits": units, "status": "ACTIVE" if units else "EXPIRED"}]), 200  # fmt: skip

    @app.post("/orange/send-from-phone")
    def orange_send_from_phone() -> tuple[Response, int]:
        def post(sms: PhoneSms) -> requests.Response:
            note = {"inboundSMSMessageNotification": {"callbackData": "sira", "inboundSMSMessage": {
                "senderAddress": f"tel:{sms.sender}", "destinationAddress": f"tel:{sms.to}", "message": sms.text,
                "messageId": sms.id, "dateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}}}  # fmt: skip
            return inbound.post(f"{callback_base}/sms/orange/incoming", json=note, timeout=10)

        return relay_from_phone(state, callback_base, short_code, "orange", post)

    def _authorised() -> bool:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return scheme == "Bearer" and state.token_valid(value.strip(), time.monotonic())


def _basic_credentials(header: str) -> bool:
    """Whether the header carries Basic client_id:client_secret, both non-empty (any are accepted)."""
    scheme, _, value = header.partition(" ")
    if scheme != "Basic":
        return False
    try:
        client_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return bool(sep and client_id and secret)


def _service_error(code: str, text: str) -> Response:
    return jsonify(requestError={"serviceException": {"messageId": code, "text": text}})
