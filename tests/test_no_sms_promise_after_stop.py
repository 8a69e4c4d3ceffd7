"""After STOP, a new request does not promise SMS that will never come; without STOP it does."""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis

from tests.callback_forms import SMS
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import ask_for_help, code_in, seeded_app

RETURNEE = "+22370000188"


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


def test_after_stop_the_end_of_a_request_says_no_sms_will_come(app: Flask, live_server) -> None:
    stop = app.test_client().post(
        "/sms/incoming", data={**SMS, "from": RETURNEE, "text": "STOP", "id": "stop-1"}
    )
    assert stop.status_code == 200 and stop.text == "ok: stop"
    phone = Phone(live_server.url, number=RETURNEE)
    assert "Bamanankan" in phone.dial()  # STOP kept the opt-out, not a language: the person chooses
    # French, ask for help, register on the way (name, sex, age, region, country, since, consent),
    # a job, send
    for answer in ["1", "1", "Awa", "2", "3", "1", "1", "1", "1", "1", "1"]:
        reply = phone.send(answer)
    assert reply.startswith("END ") and code_in(reply), reply
    assert "Vous recevrez un SMS" not in reply and "pas de SMS" in reply and "STOP" in reply


def test_without_stop_the_request_still_promises_an_sms(app: Flask, live_server) -> None:
    reply = ask_for_help(Phone(live_server.url, number=RETURNEE))
    assert "Vous recevrez un SMS" in reply and "{" not in reply
