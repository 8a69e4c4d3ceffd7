"""A USSD phone in the browser, for demos and training: it drives the real webhook and shows the
phone's SMS from the local gateway emulator.

The webhook is called through the app's own WSGI stack (a test client of this same app), not over
HTTP to PUBLIC_BASE_URL: the callback secret never leaves the server, nothing depends on the public
URL reaching back to this process, and a one-worker server cannot deadlock waiting on itself. The
call still runs the real route with the real Redis and database, exactly as a gateway's would.

The conversation's state, the session id and the `*`-joined history of inputs (what Africa's
Talking sends as `text`), travels in hidden fields of the form, so the page works without
JavaScript and keeps nothing on the server. In production the page is off unless SMS go to the
local emulator: with a real gateway it would send real SMS from a made-up number.

The other transport, SMPP, is played through the local operator gateway emulator's phones
(SMPP_EMULATOR_URL): it delivers each input to the SMPP connector, which answers with the same
conversation; the form then keeps only the emulator's session number.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import requests
from flask import current_app, render_template, request
from flask.typing import ResponseReturnValue

from config import Settings
from models.admin import audit
from models.phone import InvalidPhone, PhoneNumber
from web.admin.access import STAFF, bp, current_user, require
from web.admin.i18n import _, translate
from web.admin.inputs import number
from web.admin.ussd import screen_text
from web.callbacks import callback_url
from web.context import sira
from web.db import get_session

SESSION_ID = re.compile(r"ATUid_sim[0-9a-f]{24}")  # 33 characters: fits the audit's object id
SMPP_SESSION_ID = re.compile(r"smpp_sim(\d{1,3})")  # the SMPP gateway emulator's session number
NETWORK_CODE = "61001"
EMULATOR_TIMEOUT = 3.0
INBOX_SHOWN = 10
OFF_IN_PRODUCTION = _("The simulator is off in production: SMS would go to real phones. It works when AT_API_URL is the local gateway emulator.")  # fmt: skip
NOT_A_PHONE = _("Not a phone number.")
NOT_A_TEST_PHONE = _("The simulator plays only the reserved test numbers, starting with:")
NO_EMULATOR = _("The gateway emulator does not answer: start it, or check AT_API_URL.")
WEBHOOK_REFUSED = _("The USSD service refused the request:")
SMS_SENT = _("SMS sent. The service answered:")
NOTHING_TO_SEND = _("Type a message first.")
HUNG_UP = _("Call ended.")
NO_SMPP_EMULATOR = _("The SMPP gateway emulator does not answer: start it (make run does), or check SMPP_EMULATOR_URL.")  # fmt: skip
TRANSPORTS = {"at": _("Africa's Talking (webhook)"), "smpp": _("Operator gateway (SMPP)")}


def emulated(settings: Settings) -> bool:
    """Whether SMS go to the local emulator (a loopback address) rather than to a real gateway."""
    return _loopback(settings.at_api_url)


def smpp_offered(settings: Settings) -> bool:
    """Whether the SMPP gateway emulator can be dialled: set, and on this machine in production."""
    url = settings.smpp_emulator_url
    return bool(url) and (not settings.is_production or _loopback(url))


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def enabled(settings: Settings) -> bool:
    return not settings.is_production or emulated(settings)


def off_in_production() -> ResponseReturnValue:
    """The page that says why the simulator is off, refusing what was asked."""
    return render_template("admin/simulator.html", enabled=False, off_message=OFF_IN_PRODUCTION), 403


@dataclass
class Call:
    """What the phone shows: the session under way, its inputs so far, the last screen."""

    phone: str = ""  # staff type the number to play: no number is written in the code
    transport: str = "at"
    session_id: str = ""
    text: str = ""
    steps: int = 0
    screen: str = ""
    ended: bool = True
    error: str = ""
    notice: str = ""
    sms_reply: str = ""

    @classmethod
    def from_form(cls, form: dict[str, str]) -> Call:
        """The hidden fields sent back; anything malformed starts from nothing rather than failing."""
        session_id = form.get("session_id", "")
        transport = form.get("transport", "at") if form.get("transport") in TRANSPORTS else "at"
        live = bool((SMPP_SESSION_ID if transport == "smpp" else SESSION_ID).fullmatch(session_id))
        steps = form.get("steps", "0")
        return cls(
            phone=form.get("phone", "").strip()[:32],
            transport=transport,
            session_id=session_id if live else "",
            text=form.get("text", "")[:2000] if live else "",
            steps=(number(steps, 9999) or 0) if live else 0,
            ended=not live,
        )


def ussd_form(call: Call, e164: str) -> dict[str, str]:
    settings: Settings = sira().settings
    return {"sessionId": call.session_id, "serviceCode": settings.ussd_service_code,
            "phoneNumber": e164, "networkCode": NETWORK_CODE, "text": call.text}  # fmt: skip


def post_callback(path: str, form: dict[str, str]) -> tuple[int, str]:
    """POST to one of our gateway callbacks through this app's WSGI stack (see the module's doc)."""
    settings: Settings = sira().settings
    get_session().commit()  # the webhook writes on its own connection: hold no transaction open here
    client = current_app.test_client()
    response = client.post(callback_url("", path, settings.callback_secrets), data=form)
    return response.status_code, response.get_data(as_text=True)


def step(call: Call, e164: str) -> None:
    status, body = post_callback("/ussd", ussd_form(call, e164))
    if status != 200:
        call.error, call.ended, call.session_id = f"{translate(WEBHOOK_REFUSED)} {body[:200]}", True, ""
        return
    call.screen, call.ended = screen_text(body)
    if call.ended:
        call.session_id, call.text, call.steps = "", "", 0


def smpp_step(call: Call, e164: str, typed: str, *, dial: bool) -> None:
    """Dial or answer through the SMPP gateway emulator's phones; it waits for the connector's screen."""
    settings: Settings = sira().settings
    get_session().commit()  # the connector writes on its own connection: hold no transaction open here
    if dial:
        path, data = "/ussd/dial", {"phone": e164}
        if typed:  # the answers to go through, dialled with the code: *384*7472*1*1#
            data["dialled"] = f"{settings.ussd_service_code.rstrip('#')}*{typed}#"
    else:
        path, data = "/ussd/answer", {"session": call.session_id.removeprefix("smpp_sim"), "text": typed}
    try:
        response = requests.post(
            settings.smpp_emulator_url.rstrip("/") + path, data=data, timeout=EMULATOR_TIMEOUT + 10
        )
        body = response.json()
    except (requests.RequestException, ValueError):
        call.error, call.ended, call.session_id = translate(NO_SMPP_EMULATOR), True, ""
        return
    if response.status_code != 200:
        reason = str(body.get("error", ""))[:200]
        call.error, call.ended, call.session_id = f"{translate(WEBHOOK_REFUSED)} {reason}", True, ""
        return
    call.session_id, call.screen, call.ended = (
        f"smpp_sim{int(body['session'])}",
        str(body["text"]),
        bool(body["end"]),
    )
    if call.ended:
        call.session_id, call.text, call.steps = "", "", 0


def emulator_url(path: str) -> str:
    return sira().settings.at_api_url.rstrip("/") + path


def inbox(e164: str) -> list[dict[str, str]] | None:
    """The phone's received SMS, newest first; None when the emulator does not answer."""
    try:
        response = requests.get(
            emulator_url("/inbox/" + quote(e164)),
            headers={"Accept": "application/json"},
            timeout=EMULATOR_TIMEOUT,
        )
        response.raise_for_status()
        messages = response.json()
    except (requests.RequestException, ValueError):
        return None
    return [
        {"from": str(m.get("from", "")), "text": str(m.get("text", "")), "at": str(m.get("at", ""))[:19]}
        for m in reversed(messages[-INBOX_SHOWN:])
        if isinstance(m, dict)
    ]


def send_sms(call: Call, e164: str, text: str) -> None:
    """The phone sends an SMS to the short code: the emulator posts it to our incoming webhook."""
    try:
        response = requests.post(
            emulator_url("/send-from-phone"), data={"from": e164, "text": text}, timeout=EMULATOR_TIMEOUT + 10
        )
        body = response.json()
    except (requests.RequestException, ValueError):
        call.error = translate(NO_EMULATOR)
        return
    if response.status_code != 200:
        call.error = f"{translate(NO_EMULATOR)} ({str(body.get('error', ''))[:100]})"
        return
    call.notice, call.sms_reply = translate(SMS_SENT), str(body.get("body", ""))[:200]


def page(call: Call, e164: str | None, status: int = 200) -> ResponseReturnValue:
    settings: Settings = sira().settings
    with_emulator = emulated(settings)
    received = inbox(e164) if e164 and with_emulator else None
    return render_template(
        "admin/simulator.html", call=call, enabled=True, emulator=with_emulator, inbox=received,
        inbox_down=bool(e164 and with_emulator and received is None),
        service_code=settings.ussd_service_code, off_message=OFF_IN_PRODUCTION,
        transports=TRANSPORTS if smpp_offered(settings) else None,
    ), status  # fmt: skip


@bp.get("/simulator")
@require(*STAFF)
def simulator() -> ResponseReturnValue:
    """A phone ready to dial, once staff type the number it plays."""
    if not enabled(sira().settings):
        return off_in_production()
    return page(Call(), None)


@bp.post("/simulator")
@require(*STAFF)
def simulator_act() -> ResponseReturnValue:
    """Dial, send an answer, hang up, send an SMS or refresh the inbox; then show the phone again."""
    settings: Settings = sira().settings
    if not enabled(settings):
        return off_in_production()
    form = request.form
    call = Call.from_form(form.to_dict())
    action = form.get("action", "refresh")
    try:
        e164, digest = PhoneNumber.parse(call.phone, settings)
    except InvalidPhone:
        call.error, call.session_id, call.ended = translate(NOT_A_PHONE), "", True
        return page(call, None, 400)
    if not e164.startswith(settings.simulator_prefixes):  # never a real returnee's or provider's phone
        reserved = ", ".join(settings.simulator_prefixes)
        call.error, call.session_id, call.ended = f"{translate(NOT_A_TEST_PHONE)} {reserved}", "", True
        return page(call, None, 400)
    call.phone = e164
    typed = form.get("input", "")[:200]
    if call.transport == "smpp" and not smpp_offered(settings):
        call.transport, call.session_id, call.ended = "at", "", True
    if action == "dial" and call.transport == "smpp":
        call.steps = 1 if typed.strip() else 0
        smpp_step(call, e164, typed.strip(), dial=True)
        audit(get_session(), current_user().id, "simulator.dial", "ussd_session", call.session_id or "smpp_sim",
              phone_hash=digest, transport="smpp")  # fmt: skip
        get_session().commit()
    elif action == "send" and call.session_id and call.transport == "smpp":
        call.steps += 1
        smpp_step(call, e164, typed, dial=False)
    elif action == "hangup" and call.session_id and call.transport == "smpp":
        # A handset that hangs up: the gateway closes the session at its time-out, no notice is sent.
        call.session_id, call.text, call.steps, call.ended, call.notice = "", "", 0, True, translate(HUNG_UP)
    elif action == "dial":
        call.session_id, call.text, call.steps = f"ATUid_sim{uuid.uuid4().hex[:24]}", typed.strip(), 0
        call.steps = 1 if call.text else 0
        audit(
            get_session(),
            current_user().id,
            "simulator.dial",
            "ussd_session",
            call.session_id,
            phone_hash=digest,
        )  # who was played, never in clear
        step(call, e164)
    elif action == "send" and call.session_id:
        call.text = f"{call.text}*{typed}" if call.steps else typed
        call.steps += 1
        step(call, e164)
    elif action == "hangup" and call.session_id:
        notice = {**ussd_form(call, e164), "status": "Incomplete", "hopsCount": str(call.steps + 1),
                  "lastAppResponse": form.get("screen", "")[:200]}  # fmt: skip
        post_callback("/ussd/events", notice)
        call.session_id, call.text, call.steps, call.ended, call.notice = "", "", 0, True, translate(HUNG_UP)
    elif action == "sms" and emulated(settings):
        text = form.get("sms", "").strip()[:480]
        if text:
            audit(
                get_session(),
                current_user().id,
                "simulator.sms",
                phone_hash=digest,
            )
            get_session().commit()
            send_sms(call, e164, text)
        else:
            call.error = translate(NOTHING_TO_SEND)
    if not call.ended and not call.error:
        call.screen = call.screen or form.get("screen", "")[:2000]
    return page(call, e164)
