"""Shared plumbing for end-to-end tests with SMS: the emulator, a seeded app, a real worker, and
the USSD journey that makes a referral."""

from __future__ import annotations

import os

from flask import Flask
from redis import Redis
from rq import Queue, Worker

from app import create_app
from tests.conftest import PHONE_HASH_KEY, REDIS_URL, Phone, app_settings
from tests.gateway_helpers import EmulatorProcess
from workers import queues

RETURNEE = "+22370000101"


def settings_for(database_url: str, gateway: EmulatorProcess, **extra: object) -> dict[str, object]:
    return app_settings(database_url, at_api_url=gateway.url, sms_retry_intervals="0,0,0", **extra)


def seeded_app(database_url: str, gateway: EmulatorProcess) -> Flask:
    """The app pointed at the emulator, with the sample directory loaded."""
    app = create_app(settings_for(database_url, gateway))
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    return app


WORKER_ENV = ("DATABASE_URL", "REDIS_URL", "PHONE_HASH_KEY", "AT_API_URL", "SMS_RETRY_INTERVALS", "ENV")


def run_worker(database_url: str, gateway: EmulatorProcess) -> None:
    """A real RQ worker in burst mode (it forks a work-horse per job and stops when queues are empty).

    It runs in the test process to save an interpreter start per call; the settings reach the
    work-horses through the environment, as they do in production. `tests/test_worker_process.py`
    starts the worker as its own process, exactly as the Procfile does.
    """
    values = dict(
        zip(
            WORKER_ENV,
            (database_url, REDIS_URL, PHONE_HASH_KEY, gateway.url, "0,0,0", "testing"),
            strict=True,
        )
    )
    saved = {name: os.environ.get(name) for name in WORKER_ENV}
    os.environ.update(values)
    try:
        with Redis.from_url(REDIS_URL) as redis:
            worker = Worker([Queue(name, connection=redis) for name in queues.ALL], connection=redis)
            worker.work(burst=True, logging_level="WARNING")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ask_for_help(
    phone: Phone, *, age: str = "3", region: tuple[str, ...] = ("1",), category: str = "1"
) -> str:
    """Dial as a newcomer, choose help, register on the way, then choose a need and confirm."""
    phone.dial()
    answers = ["1", "1", "Awa", "2", age, *region, "1", "1", "1", category, "1"]
    for answer in answers:
        reply = phone.send(answer)
    return reply


def code_in(reply: str) -> str:
    return next(word for word in reply.split() if len(word) == 5 and word.isupper() and word.isalnum())


def messages(gateway: EmulatorProcess) -> list[dict]:
    return gateway.get("/messages").json()


def send_from_phone(gateway: EmulatorProcess, number: str, text: str) -> str:
    """A person sends an SMS to the service; the emulator posts it to our webhook as the gateway would."""
    response = gateway.post("/send-from-phone", data={"from": number, "text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    return str(body)


def inbox(gateway: EmulatorProcess, number: str) -> list[str]:
    return [m["text"] for m in gateway.get("/messages").json() if m["to"] == number]
