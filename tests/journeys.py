"""Shared plumbing for end-to-end tests with SMS: the emulator, a seeded app, a real worker, and
the USSD journey that makes a referral."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app import create_app
from flows.text import to_ussd
from infra.referral_code import is_code
from tests.conftest import Phone, app_settings
from tests.conftest import run_worker as run_worker_at
from tests.gateway_helpers import EmulatorProcess

RETURNEE = "+22370000101"


def settings_for(database_url: str, gateway: EmulatorProcess, **extra: object) -> dict[str, object]:
    return app_settings(database_url, at_api_url=gateway.url, sms_retry_intervals="0,0,0", **extra)


def seeded_app(database_url: str, gateway: EmulatorProcess) -> Flask:
    """The app pointed at the emulator, with the sample directory loaded."""
    return app_with_directory(settings_for(database_url, gateway))


def app_with_directory(settings: dict[str, object]) -> Flask:
    """The app on `settings`, with the sample directory loaded (`flask seed`)."""
    app = create_app(settings)
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    return app


def run_worker(database_url: str, gateway: EmulatorProcess, **options: Any) -> None:
    """Run the queued jobs on Sira's worker (tests.conftest.run_worker), sending through `gateway`."""
    run_worker_at(database_url, gateway.url, **options)


def referred_for_a_job(server_url: str, gateway: EmulatorProcess, database_url: str) -> str:
    """A returnee in Bamako asks for a job and the worker alerts APEJ; the emulator is emptied after,
    so that a test sees only what its own actions send. The referral's code."""
    code = code_in(ask_for_help(Phone(server_url, number=RETURNEE)))
    run_worker(database_url, gateway)
    gateway.post("/reset")
    return code


def ask_for_help(
    phone: Phone, *, age: str = "3", region: tuple[str, ...] = ("1",), category: str = "1", name: str = "Awa"
) -> str:
    """Dial as a newcomer, choose help, register on the way, then choose a need and confirm."""
    phone.dial()
    for answer in help_answers(age=age, region=region, category=category, name=name):
        reply = phone.send(answer)
    return reply


def help_answers(
    *, age: str = "3", region: tuple[str, ...] = ("1",), category: str = "1", name: str = "Awa"
) -> list[str]:
    """`ask_for_help`'s answers after the dial: language, help, the registration, the need, Send."""
    return ["1", "1", name, "2", age, *region, "1", "1", "1", category, "1"]


def code_in(reply: str) -> str:
    return next(word for word in reply.split() if is_code(word))


def messages(gateway: EmulatorProcess) -> list[dict]:
    return gateway.get("/messages").json()


def send_from_phone(gateway: EmulatorProcess, number: str, text: str) -> str:
    """A person sends an SMS to the service; the emulator posts it to our webhook as the gateway would."""
    response = gateway.post("/send-from-phone", data={"from": number, "text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    return str(body)


def text_service(gateway: EmulatorProcess, database_url: str, number: str, text: str) -> None:
    """A person sends an SMS and the worker carries out what it queued (the answer, any alert)."""
    send_from_phone(gateway, number, text)
    run_worker(database_url, gateway)


def inbox(gateway: EmulatorProcess, number: str) -> list[str]:
    """The texts a phone received, folded to plain letters so that tests compare words, not accents."""
    return [to_ussd(m["text"]) for m in gateway.get("/messages").json() if m["to"] == number]
