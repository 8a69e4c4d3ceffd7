"""A local Africa's Talking: the SMS API the SDK calls, the phones it reaches, and their callbacks.

Nothing here can reach the real gateway, so development, demos and tests run against this real
HTTP server instead. It answers `POST /version1/messaging` as Africa's Talking does, keeps every
message in memory (the "phone side", so it shows numbers: they are fictitious test numbers),
posts delivery reports to `{callback_base}/sms/delivery` a moment later, lets a "phone" send an
SMS to `{callback_base}/sms/incoming`, and injects faults on demand.

    python -m gateway.emulator --host 127.0.0.1 --port 8025 --callback-base http://127.0.0.1:5000

Endpoints besides the API: `GET|DELETE /messages`, `GET /inbox/<phone>` (JSON, or HTML with
`?format=html`), `POST /send-from-phone`, `GET|POST /faults`, `POST /reset`, `GET /` (health).
"""

from __future__ import annotations

import argparse
import logging
import queue
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask, Response, jsonify, request
from markupsafe import escape

from gateway.segments import segment_count

log = logging.getLogger(__name__)

DEFAULT_SENDER = "AFRICASTKNG"  # what Africa's Talking uses when the request names no sender
NETWORK_CODE = "61001"  # a Malian network code, as delivery reports carry one
# Per-recipient rejections Africa's Talking reports inside a 2xx answer, with their codes.
REJECT_CODES = {
    "RiskHold": 401,
    "InvalidSenderId": 402,
    "InvalidPhoneNumber": 403,
    "UnsupportedNumberType": 404,
    "InsufficientBalance": 405,
    "UserInBlacklist": 406,
    "CouldNotRoute": 407,
    "DoNotDisturbRejection": 409,
    "InternalServerError": 500,
    "GatewayError": 501,
    "RejectedByGateway": 502,
}
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_MALI = re.compile(r"^\+223\d{8}$")


@dataclass
class Faults:
    """What goes wrong, settable at run time; rates draw from a seeded random, fail_next is exact."""

    http_500_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 10.0
    reject_rate: float = 0.0
    reject_status: str = "InvalidPhoneNumber"
    fail_next: int = 0
    delivery_failure_rate: float = 0.0
    delivery_failure_reason: str = "UserInBlacklist"

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update, checking every value first so a bad request changes nothing."""
        unknown = set(changes) - {f.name for f in fields(self)} - {"seed"}
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(sorted(unknown))}")
        checked: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "seed":
                continue
            if name.endswith("_rate"):
                if not isinstance(value, int | float) or not 0 <= value <= 1:
                    raise ValueError(f"{name} must be a number between 0 and 1")
                checked[name] = float(value)
            elif name == "timeout_seconds":
                if not isinstance(value, int | float) or value < 0:
                    raise ValueError("timeout_seconds must be a non-negative number")
                checked[name] = float(value)
            elif name == "fail_next":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError("fail_next must be a non-negative integer")
                checked[name] = value
            elif name == "reject_status":
                if value not in REJECT_CODES:
                    raise ValueError(f"reject_status must be one of {', '.join(REJECT_CODES)}")
                checked[name] = value
            else:
                if not isinstance(value, str) or not value:
                    raise ValueError(f"{name} must be a non-empty string")
                checked[name] = value
        for name, value in checked.items():
            setattr(self, name, value)


class EmulatorState:
    """Messages, faults and the random source, behind one lock (the server is threaded)."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.faults = Faults()
        self.seed = seed
        self.rng = random.Random(seed)
        # Bumped by reset: work started before a reset (a slow "timeout" answer, a pending delivery
        # report) must not leak into the next test.
        self.generation = 0

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.faults = Faults()
            self.rng = random.Random(self.seed)
            self.generation += 1

    def draw(self, rate: float) -> bool:
        """One seeded coin toss; call with the lock held."""
        return rate > 0 and self.rng.random() < rate

    def add(self, record: dict[str, Any], generation: int) -> None:
        with self.lock:
            if generation == self.generation:
                self.messages.append(record)

    def set_status(self, message_id: str, status: str, failure_reason: str | None, generation: int) -> bool:
        """Record the delivery outcome; False when the message was cleared in the meantime."""
        with self.lock:
            if generation != self.generation:
                return False
            for record in self.messages:
                if record["id"] == message_id:
                    record["status"] = status
                    record["failure_reason"] = failure_reason
                    return True
        return False

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages]


@dataclass(frozen=True)
class _Report:
    due: float
    generation: int
    message_id: str
    phone: str
    failure_reason: str | None


class DeliveryReporter:
    """Posts delivery reports from one background thread, each `delay` seconds after acceptance."""

    def __init__(self, state: EmulatorState, callback_base_url: str | None, delay: float) -> None:
        self.state = state
        self.url = f"{callback_base_url.rstrip('/')}/sms/delivery" if callback_base_url else None
        self.delay = delay
        self._queue: queue.Queue[_Report] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._session = requests.Session()

    def schedule(self, message_id: str, phone: str, failure_reason: str | None, generation: int) -> None:
        self._ensure_thread()
        self._queue.put(_Report(time.monotonic() + self.delay, generation, message_id, phone, failure_reason))

    def _ensure_thread(self) -> None:
        # Started on first use, not in create_emulator, so building the app starts no thread.
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="delivery-reports", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            report = self._queue.get()
            time.sleep(max(0.0, report.due - time.monotonic()))  # delays are equal, so FIFO is in due order
            try:
                self._deliver(report)
            except Exception:  # the reporter thread must outlive any one bad report
                log.exception("delivery report for %s failed", report.message_id)

    def _deliver(self, report: _Report) -> None:
        status = "Failed" if report.failure_reason else "Success"
        if not self.state.set_status(report.message_id, status, report.failure_reason, report.generation):
            return
        if self.url is None:
            return
        form = {
            "id": report.message_id,
            "status": status,
            "phoneNumber": report.phone,
            "networkCode": NETWORK_CODE,
            "retryCount": "0",
        }
        if report.failure_reason:
            form["failureReason"] = report.failure_reason
        try:
            response = self._session.post(self.url, data=form, timeout=5)
        except requests.RequestException as exc:
            log.warning(
                "delivery report for %s dropped: %s unreachable (%s)", report.message_id, self.url, exc
            )
            return
        if response.status_code >= 300:
            log.warning("delivery report for %s answered HTTP %s", report.message_id, response.status_code)


def create_emulator(
    callback_base_url: str | None,
    *,
    delivery_delay: float = 0.2,
    seed: int = 0,
    api_key: str | None = None,
    short_code: str = "7472",
    currency: str = "XOF",
    price_per_part: float = 25.0,
) -> Flask:
    """Build the emulator app; `api_key` None accepts any non-empty key, as tests need no secret."""
    app = Flask(__name__)
    state = EmulatorState(seed)
    reporter = DeliveryReporter(state, callback_base_url, delivery_delay)
    app.extensions["sms_emulator"] = state
    callback_base = callback_base_url.rstrip("/") if callback_base_url else None
    inbound_session = requests.Session()

    @app.get("/")
    def health() -> Response:
        return jsonify(service="africastalking-emulator", messages=len(state.snapshot()))

    @app.post("/version1/messaging")
    def send_messages() -> Response | tuple[Any, int]:
        key = request.headers.get("apiKey", "")
        if not key or (api_key is not None and key != api_key):
            return Response("The supplied authentication is invalid", 401, mimetype="text/plain")
        for required in ("username", "to", "message"):
            if not request.form.get(required):
                return Response(
                    f"Request is missing required form field '{required}'", 400, mimetype="text/plain"
                )
        sender = request.form.get("from") or DEFAULT_SENDER
        text = request.form["message"]
        numbers = [n.strip() for n in request.form["to"].split(",") if n.strip()]

        with state.lock:
            generation = state.generation
            faults = state.faults
            if faults.fail_next > 0:
                faults.fail_next -= 1
                fail = True
            else:
                fail = state.draw(faults.http_500_rate)
            slow = not fail and state.draw(faults.timeout_rate)
            rejected = state.draw(faults.reject_rate)
            delivery_failed = [state.draw(faults.delivery_failure_rate) for _ in numbers]
            reject_status, pause = faults.reject_status, faults.timeout_seconds
            failure_reason = faults.delivery_failure_reason
        if fail:
            return Response("Internal Server Error", 500, mimetype="text/plain")
        if slow:
            # The real gateway can be slow yet still accept the message: the caller's time-out
            # fires, the SMS goes out anyway, and a retry sends it twice.
            time.sleep(pause)
        if rejected and reject_status == "InvalidSenderId":
            return jsonify(SMSMessageData={"Message": "InvalidSenderId", "Recipients": []}), 201

        parts = segment_count(text)
        recipients, sent, total = [], 0, 0.0
        for number, dlr_failed in zip(numbers, delivery_failed, strict=True):
            if not _reachable(number):
                status = "InvalidPhoneNumber"
            elif rejected:
                status = reject_status
            else:
                status = "Success"
            record = {
                "id": None,
                "to": number,
                "from": sender,
                "text": text,
                "status": status,
                "segments": parts,
                "at": _now_iso(),
                "direction": "outbound",
                "failure_reason": None,
            }
            if status == "Success":
                message_id = f"ATXid_{secrets.token_hex(16)}"
                cost = price_per_part * parts
                sent, total = sent + 1, total + cost
                record.update(id=message_id, status="Sent")
                recipients.append(
                    {
                        "statusCode": 101,
                        "number": number,
                        "status": "Success",
                        "cost": f"{currency} {cost:.4f}",
                        "messageId": message_id,
                        "messageParts": parts,
                    }
                )
                state.add(record, generation)
                reporter.schedule(message_id, number, failure_reason if dlr_failed else None, generation)
            else:
                recipients.append(
                    {
                        "statusCode": REJECT_CODES[status],
                        "number": number,
                        "status": status,
                        "cost": "0",
                        "messageId": "None",
                    }
                )
                state.add(record, generation)
        total_text = f"{currency} {total:.4f}" if sent else "0"
        summary = f"Sent to {sent}/{len(numbers)} Total Cost: {total_text}"
        return jsonify(SMSMessageData={"Message": summary, "Recipients": recipients}), 201

    @app.get("/messages")
    def list_messages() -> Response:
        return jsonify(state.snapshot())

    @app.delete("/messages")
    def clear_messages() -> tuple[str, int]:
        with state.lock:
            state.messages.clear()
            state.generation += 1
        return "", 204

    @app.get("/inbox/<path:phone>")
    def inbox(phone: str) -> Response:
        number = phone if phone.startswith("+") else f"+{phone.strip()}"
        received = [m for m in state.snapshot() if m["direction"] == "outbound" and m["to"] == number]
        wants_html = request.args.get("format") == "html" or (
            request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"
            and request.args.get("format") != "json"
        )
        if wants_html:
            return Response(_inbox_html(number, received), mimetype="text/html")
        return jsonify(received)

    @app.post("/send-from-phone")
    def send_from_phone() -> tuple[Response, int]:
        payload = request.get_json(silent=True) if request.is_json else request.form
        payload = payload or {}
        sender, text = str(payload.get("from", "")).strip(), str(payload.get("text", ""))
        if not sender or not text:
            return jsonify(error="'from' and 'text' are required"), 400
        if callback_base is None:
            return jsonify(error="the emulator was started without a callback base"), 409
        form = {
            "from": sender,
            "to": str(payload.get("to") or short_code),
            "text": text,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "id": str(uuid.uuid4()),
            "linkId": str(uuid.uuid4()),
        }
        with state.lock:
            generation = state.generation
        record = {
            "id": form["id"],
            "to": form["to"],
            "from": sender,
            "text": text,
            "status": "Received",
            "segments": segment_count(text),
            "at": _now_iso(),
            "direction": "inbound",
            "failure_reason": None,
        }
        state.add(record, generation)
        try:
            upstream = inbound_session.post(f"{callback_base}/sms/incoming", data=form, timeout=10)
        except requests.RequestException as exc:
            log.warning("inbound sms %s not delivered: callback unreachable (%s)", form["id"], exc)
            return jsonify(error=f"callback unreachable: {type(exc).__name__}", id=form["id"]), 502
        return jsonify(status_code=upstream.status_code, body=upstream.text, id=form["id"]), 200

    @app.get("/faults")
    def get_faults() -> Response:
        with state.lock:
            return jsonify(asdict(state.faults) | {"seed": state.seed})

    @app.post("/faults")
    def set_faults() -> tuple[Response, int]:
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return jsonify(error="send a JSON object of faults"), 400
        seed = changes.get("seed", None)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            return jsonify(error="seed must be an integer"), 400
        with state.lock:
            try:
                state.faults.update(changes)
            except ValueError as exc:
                return jsonify(error=str(exc)), 400
            if seed is not None:
                state.seed = seed
                state.rng = random.Random(state.seed)
            return jsonify(asdict(state.faults) | {"seed": state.seed}), 200

    @app.post("/reset")
    def reset() -> tuple[str, int]:
        state.reset()
        return "", 204

    return app


def _reachable(number: str) -> bool:
    """Whether a real network would take the number: E.164, and 8 digits after +223 for Mali."""
    return bool(_E164.match(number)) and (not number.startswith("+223") or bool(_MALI.match(number)))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _inbox_html(number: str, messages: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"<li><small>{escape(m['at'])} · {escape(m['from'])} · {escape(m['status'])}</small>"
        f"<p>{escape(m['text'])}</p></li>"
        for m in messages
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Inbox {escape(number)}</title>"
        "<style>body{font-family:sans-serif;max-width:28em;margin:1em auto}"
        "li{list-style:none;border:1px solid #ccc;border-radius:.5em;margin:.5em 0;padding:.5em}"
        "p{margin:.3em 0;white-space:pre-wrap}</style></head><body>"
        f"<h1>{escape(number)}</h1><ul>{rows or '<li>No messages yet.</li>'}</ul></body></html>"
    )


def main(argv: list[str] | None = None) -> None:
    """Serve the emulator until interrupted."""
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(prog="python -m gateway.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--callback-base", default="http://127.0.0.1:5000", help="Sira's public base URL")
    parser.add_argument("--delivery-delay", type=float, default=0.2, help="seconds before a delivery report")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault-injection random source")
    parser.add_argument("--api-key", default=None, help="accept only this apiKey (default: any non-empty)")
    parser.add_argument("--short-code", default="7472", help="default 'to' of SMS sent from a phone")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_emulator(
        args.callback_base,
        delivery_delay=args.delivery_delay,
        seed=args.seed,
        api_key=args.api_key,
        short_code=args.short_code,
    )
    server = make_server(args.host, args.port, app, threaded=True)
    log.info(
        "Africa's Talking emulator on http://%s:%s, callbacks to %s",
        args.host,
        server.port,
        args.callback_base,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
