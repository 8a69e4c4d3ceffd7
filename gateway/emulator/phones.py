"""What the emulator's Africa's Talking and Orange faces share: the phones' messages and their SMS.

Each face speaks only its own protocol (its send API, its callback's body); the record of a message
as `/messages` and the inboxes show it, and a phone's SMS to the short code (read, stored, then
posted to Sira's callback), are written here once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Response, jsonify, request

from gateway.emulator.state import EmulatorState
from gateway.segments import segment_count

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhoneSms:
    """An SMS a phone sends to our short code (or to `to`), with the id the gateway gives it."""

    id: str
    sender: str
    to: str
    text: str


def message_record(
    message_id: str | None, to: str, sender: str, text: str, *, status: str, direction: str, gateway: str
) -> dict[str, Any]:
    """A message as the emulator keeps it: what `/messages` and the inboxes show."""
    return {
        "id": message_id,
        "to": to,
        "from": sender,
        "text": text,
        "status": status,
        "segments": segment_count(text),
        "at": now_iso(),
        "direction": direction,
        "failure_reason": None,
        "gateway": gateway,
    }


def relay_from_phone(
    state: EmulatorState,
    callback_base: str | None,
    short_code: str,
    gateway: str,
    post: Callable[[PhoneSms], requests.Response],
) -> tuple[Response, int]:
    """Read a phone's SMS from the request (`from`, `text`, optional `to`; form or JSON), keep it,
    and hand it to `post`, which calls Sira's callback in the face's own protocol."""
    payload = (request.get_json(silent=True) if request.is_json else request.form) or {}
    sender, text = str(payload.get("from", "")).strip(), str(payload.get("text", ""))
    if not sender or not text:
        return jsonify(error="'from' and 'text' are required"), 400
    if callback_base is None:
        return jsonify(error="the emulator was started without a callback base"), 409
    sms = PhoneSms(str(uuid.uuid4()), sender, str(payload.get("to") or short_code), text)
    record = message_record(
        sms.id, sms.to, sender, text, status="Received", direction="inbound", gateway=gateway
    )
    state.add(record, state.current_generation())
    try:
        upstream = post(sms)
    except requests.RequestException as exc:
        log.warning("inbound sms %s not delivered: callback unreachable (%s)", sms.id, type(exc).__name__)
        return jsonify(error=f"callback unreachable: {type(exc).__name__}", id=sms.id), 502
    return jsonify(status_code=upstream.status_code, body=upstream.text, id=sms.id), 200


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
