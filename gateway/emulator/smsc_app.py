"""The phones' side of the local USSD gateway, over HTTP: dial, answer, read the screens.

    python -m gateway.emulator.smsc_app --smpp-port 2775 --port 8026

Sira's connector binds to the SMPP port; a person (or `flask ussd --transport smpp`, or a test)
dials through HTTP. Endpoints: `POST /ussd/dial` (phone, optional dialled string such as
`*384*7472*2#`) and `POST /ussd/answer` (session, text) each answer with the next screen as JSON
(`{"session", "text", "end"}`); `GET /ussd/sessions` lists every session with its screens and its
late replies; `POST /faults` (throttle=N, drop=1) throttles the next N replies or drops the binds.
"""

from __future__ import annotations

import argparse
import logging
import re
from typing import Any

from flask import Flask, Response, jsonify, request

from gateway.emulator.smsc import UssdGatewayEmulator

log = logging.getLogger(__name__)

_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_DIALLED = re.compile(r"^\*[0-9*]+#$")


def create_smsc_app(smsc: UssdGatewayEmulator, *, wait: float = 10.0) -> Flask:
    """The HTTP face of `smsc`; each call waits up to `wait` seconds for the connector's screen."""
    app = Flask(__name__)

    def values() -> dict[str, Any]:
        return request.get_json(silent=True) or request.form.to_dict()

    def bad(reason: str, status: int = 400) -> tuple[Response, int]:
        return jsonify(error=reason), status

    def screen(number: int, count: int) -> Response | tuple[Response, int]:
        try:
            shown = smsc.wait_screen(number, count, timeout=wait)
        except TimeoutError:
            late = smsc.sessions[number].late
            reason = (
                "the service answered after the gateway's time-out" if late else "no answer from the service"
            )
            return jsonify(session=number, error=reason, end=True), 504
        return jsonify(session=number, text=shown.text, end=shown.end)

    @app.get("/")
    def health() -> Response:
        return jsonify(
            service="smpp-ussd-emulator", smpp_port=smsc.port, binds=smsc.binds, sessions=len(smsc.sessions)
        )

    @app.post("/ussd/dial")
    def dial() -> Response | tuple[Response, int]:
        data = values()
        phone = str(data.get("phone", "")).strip()
        dialled = str(data.get("dialled", "")).strip() or None
        if not _E164.match(phone):
            return bad("phone must be an E.164 number: + then the country code and the number")
        if dialled is not None and not _DIALLED.match(dialled):
            return bad("dialled must look like *384*7472# or *384*7472*2#")
        if not smsc.wait_for(lambda: smsc.bound, timeout=2):
            return bad("no SMPP connector is bound to the gateway (flask --app app smpp-connector)", 503)
        return screen(smsc.dial(phone, dialled), 1)

    @app.post("/ussd/answer")
    def answer() -> Response | tuple[Response, int]:
        data = values()
        try:
            number = int(data.get("session", ""))
        except ValueError:
            return bad("session must be the number /ussd/dial returned")
        session = smsc.sessions.get(number)
        if session is None:
            return bad("no such session", 404)
        if session.ended:
            return bad("this session has ended; dial again", 409)
        text = str(data.get("text", ""))
        if len(text) > 182:
            return bad("an answer has at most 182 characters")
        smsc.answer(number, text)
        return screen(number, len(session.screens) + 1)

    @app.get("/ussd/sessions")
    def sessions() -> Response:
        return jsonify(
            [
                {
                    "session": s.number,
                    "phone": s.phone,
                    "ended": s.ended,
                    "screens": [{"text": x.text, "end": x.end} for x in s.screens],
                    "late": [x.text for x in s.late],
                }
                for s in list(smsc.sessions.values())
            ]
        )

    @app.post("/faults")
    def faults() -> Response | tuple[Response, int]:
        data = values()
        try:
            throttle = int(data.get("throttle", 0))
        except ValueError:
            return bad("throttle must be a number of replies")
        if throttle:
            smsc.throttle_next(throttle)
        if str(data.get("drop", "")) in ("1", "true"):
            smsc.drop_binds()
        return jsonify(throttle=throttle, binds=smsc.binds)

    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the gateway (SMPP) and its phones (HTTP) until interrupted."""
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(
        prog="python -m gateway.emulator.smsc_app", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026, help="HTTP port of the phones' side")
    parser.add_argument("--smpp-port", type=int, default=2775)
    parser.add_argument("--system-id", default="sira")
    parser.add_argument("--password", default="sira")
    parser.add_argument("--service-code", default="*384*7472#")
    parser.add_argument(
        "--reply-timeout", type=float, default=20.0, help="seconds a phone waits for a screen"
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    smsc = UssdGatewayEmulator(
        args.host,
        args.smpp_port,
        system_id=args.system_id,
        password=args.password,
        service_code=args.service_code,
        reply_timeout=args.reply_timeout,
    )
    smsc.start()
    server = make_server(args.host, args.port, create_smsc_app(smsc), threaded=True)
    log.info(
        "USSD gateway emulator: SMPP on %s:%s, phones on http://%s:%s",
        args.host,
        smsc.port,
        args.host,
        server.port,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        smsc.stop()


if __name__ == "__main__":
    main()
