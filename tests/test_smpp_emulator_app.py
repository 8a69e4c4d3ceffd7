"""The USSD gateway emulator's phones over HTTP, and the terminal phone dialling through it.

Real TCP between the emulator and the connector, real HTTP to the emulator's phones' side; the
conversation is the small recorder of test_smpp_connector (Sira's own is in test_smpp_journeys).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from redis import Redis

from config import parse_smpp_links
from gateway.emulator.smsc import UssdGatewayEmulator
from gateway.emulator.smsc_app import create_smsc_app
from gateway.smpp import Connector
from tests.conftest import LiveServer
from tests.test_smpp_connector import Recorder, redact


@contextmanager
def bound_phones(redis: Redis) -> Iterator[tuple[str, UssdGatewayEmulator]]:
    """The SMPP gateway emulator's phones (its HTTP side's URL, and the emulator), with a connector
    bound to it that records each step in Redis."""
    smsc = UssdGatewayEmulator()
    smsc.start()
    links = parse_smpp_links(f"smpp://sira:sira@127.0.0.1:{smsc.port}?name=emu&reconnect_min=0.1")
    connector = Connector(links, Recorder(redis), service_code="*384*7472#", redact=redact, workers=2)
    connector.start()
    assert connector.wait_bound(5)
    with LiveServer(create_smsc_app(smsc, wait=3)) as server:
        yield server.url, smsc
    connector.stop()
    smsc.stop()


@pytest.fixture
def phones(redis: Redis) -> Iterator[tuple[str, UssdGatewayEmulator]]:
    with bound_phones(redis) as phones:
        yield phones


def test_a_person_dials_answers_and_reads_the_sessions_over_http(phones) -> None:
    url, _ = phones
    first = requests.post(
        f"{url}/ussd/dial", data={"phone": "+22370000101", "dialled": "*384*7472*2#"}
    ).json()
    assert first["text"] == "step 1: 2" and first["end"] is False
    second = requests.post(f"{url}/ussd/answer", json={"session": first["session"], "text": "bye"}).json()
    assert second == {"session": first["session"], "text": "step 2: bye", "end": True}
    ended = requests.post(f"{url}/ussd/answer", data={"session": first["session"], "text": "1"})
    assert ended.status_code == 409 and "dial again" in ended.json()["error"]
    (listed,) = requests.get(f"{url}/ussd/sessions").json()
    assert listed["ended"] and [s["text"] for s in listed["screens"]] == ["step 1: 2", "step 2: bye"]


@pytest.mark.parametrize(
    ("path", "data", "status", "says"),
    [
        ("/ussd/dial", {"phone": "70000101"}, 400, "E.164"),
        ("/ussd/dial", {"phone": "+22370000101", "dialled": "7472"}, 400, "dialled must look like"),
        ("/ussd/answer", {"session": "x", "text": "1"}, 400, "session must be"),
        ("/ussd/answer", {"session": "250", "text": "1"}, 404, "no such session"),
        ("/faults", {"throttle": "many"}, 400, "throttle must be"),
    ],
)
def test_bad_input_to_the_phones_side_gets_a_reason_and_changes_nothing(
    phones, path, data, status, says
) -> None:
    url, smsc = phones
    response = requests.post(url + path, data=data)
    assert response.status_code == status and says in response.json()["error"]
    assert smsc.sessions == {}


def test_dialling_with_no_connector_bound_says_so(redis) -> None:
    smsc = UssdGatewayEmulator()
    smsc.start()
    try:
        with LiveServer(create_smsc_app(smsc, wait=1)) as server:
            response = requests.post(f"{server.url}/ussd/dial", data={"phone": "+22370000101"})
        assert response.status_code == 503 and "smpp-connector" in response.json()["error"]
    finally:
        smsc.stop()


def test_the_terminal_phone_dials_over_smpp(app, phones) -> None:
    url, smsc = phones
    result = app.test_cli_runner().invoke(
        args=["ussd", "70000101", "--transport", "smpp", "--url", url, "--inputs", "1,bye"]
    )
    assert result.exit_code == 0, result.output
    assert "step 1: -" in result.output and "> 1" in result.output and "step 3: bye" in result.output
    assert next(iter(smsc.sessions.values())).phone == "+22370000101"


def test_the_terminal_phone_says_clearly_when_the_gateway_emulator_is_not_there(app) -> None:
    result = app.test_cli_runner().invoke(
        args=["ussd", "70000101", "--transport", "smpp", "--url", "http://127.0.0.1:1", "--inputs", ""]
    )
    assert result.exit_code != 0 and "cannot reach the USSD gateway emulator" in result.output
