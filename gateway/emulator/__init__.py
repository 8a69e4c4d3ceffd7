"""A local Africa's Talking: the SMS API the SDK calls, the phones it reaches, and their callbacks.

Nothing here can reach the real gateway, so development, demos and tests run against this real
HTTP server instead. It answers `POST /version1/messaging` as Africa's Talking does, keeps every
message in memory (the "phone side", so it shows numbers: they are fictitious test numbers),
posts delivery reports to `{callback_base}/sms/delivery` a moment later, lets a "phone" send an
SMS to `{callback_base}/sms/incoming`, and injects faults on demand.

    python -m gateway.emulator --host 127.0.0.1 --port 8025 --callback-base http://127.0.0.1:5000

Endpoints besides the API: `GET|DELETE /messages`, `GET /inbox/<phone>` (JSON, or HTML with
`?format=html`), `POST /send-from-phone`, `GET|POST /faults`, `POST /reset`, `GET /` (health).
It also has Orange's SMS API face (gateway/emulator/orange.py) on the same port.
"""

from __future__ import annotations

import argparse
import logging
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from flask import Flask, Response, jsonify, request
from markupsafe import escape

from gateway.emulator.orange import add_orange_face
from gateway.emulator.phones import PhoneSms, message_record, relay_from_phone
from gateway.emulator.reports import DeliveryReporter
from gateway.emulator.state import REJECT_CODES, EmulatorState
from gateway.segments import segment_count

__all__ = ["create_emulator", "main"]

log = logging.getLogger(__name__)

DEFAULT_SENDER = "AFRICASTKNG"  # what Africa's Talking uses when the request names no sender
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_MALI = re.compile(r"^\+223\d{8}$")


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

        decision = state.decide(len(numbers))
        if decision.http_500:
            return Response("Internal Server Error", 500, mimetype="text/plain")
        if decision.delay:
            # The real gateway can be slow yet still accept the message: the caller's time-out
            # fires, the SMS goes out anyway, and a retry sends it twice.
            time.sleep(decision.delay)
        if decision.reject_status == "InvalidSenderId":
            return jsonify(SMSMessageData={"Message": "InvalidSenderId", "Recipients": []}), 201

        parts = segment_count(text)
        recipients, sent, total = [], 0, 0.0
        for number, failure_reason in zip(numbers, decision.delivery_failures, strict=True):
            if not _reachable(number):
                status = "InvalidPhoneNumber"
            elif decision.reject_status:
                status = decision.reject_status
            else:
                status = "Success"
            record = message_record(
                None, number, sender, text, status=status, direction="outbound", gateway="africastalking"
            )
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
            state.add(record, decision.generation)
            if record["id"] is not None:  # scheduled after add, so the report always finds its record
                reporter.schedule(record["id"], number, failure_reason, decision.generation)
        total_text = f"{currency} {total:.4f}" if sent else "0"
        summary = f"Sent to {sent}/{len(numbers)} Total Cost: {total_text}"
        return jsonify(SMSMessageData={"Message": summary, "Recipients": recipients}), 201

    add_orange_face(app, state, reporter, callback_base, _reachable, short_code)

    @app.get("/messages")
    def list_messages() -> Response:
        return jsonify(state.snapshot())

    @app.delete("/messages")
    def clear_messages() -> tuple[str, int]:
        state.clear_messages()
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
        def post(sms: PhoneSms) -> requests.Response:
            form = {
                "from": sms.sender,
                "to": sms.to,
                "text": sms.text,
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "id": sms.id,
                "linkId": str(uuid.uuid4()),
            }
            return inbound_session.post(f"{callback_base}/sms/incoming", data=form, timeout=10)

        return relay_from_phone(state, callback_base, short_code, "africastalking", post)

    @app.get("/faults")
    def get_faults() -> Response:
        return jsonify(state.faults_view())

    @app.post("/faults")
    def set_faults() -> tuple[Response, int]:
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return jsonify(error="send a JSON object of faults"), 400
        try:
            return jsonify(state.configure(changes)), 200
        except ValueError as exc:
            return jsonify(error=str(exc)), 400

    @app.post("/reset")
    def reset() -> tuple[str, int]:
        state.reset()
        return "", 204

    return app


def _reachable(number: str) -> bool:
    """Whether a real network would take the number: E.164, and 8 digits after +223 for Mali."""
    return bool(_E164.match(number)) and (not number.startswith("+223") or bool(_MALI.match(number)))


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
