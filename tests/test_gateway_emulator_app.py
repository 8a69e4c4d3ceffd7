"""The emulator's own contract, in process: API answers, fault settings, and resilience of callbacks."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from gateway_helpers import free_port, wait_for

from gateway.emulator import create_emulator

SEND = {"username": "sandbox", "to": "+22370000001", "message": "Bonjour", "bulkSMSMode": "1"}
KEY = {"apiKey": "test-key"}


@pytest.fixture
def api() -> FlaskClient:
    # A callback base where nothing listens: delivery reports must be dropped, not crash anything.
    return create_emulator(f"http://127.0.0.1:{free_port()}", delivery_delay=0.01).test_client()


def test_send_without_api_key_is_401(api: FlaskClient) -> None:
    response = api.post("/version1/messaging", data=SEND)

    assert response.status_code == 401


def test_send_without_recipients_is_400(api: FlaskClient) -> None:
    response = api.post("/version1/messaging", data={**SEND, "to": ""}, headers=KEY)

    assert response.status_code == 400


def test_send_answers_like_africastalking(api: FlaskClient) -> None:
    response = api.post("/version1/messaging", data={**SEND, "to": "+22370000001,+2237000"}, headers=KEY)

    assert response.status_code == 201
    data = response.get_json()["SMSMessageData"]
    assert data["Message"] == "Sent to 1/2 Total Cost: XOF 25.0000"
    ok, bad = data["Recipients"]
    assert (ok["statusCode"], ok["status"], ok["cost"], ok["number"]) == (
        101,
        "Success",
        "XOF 25.0000",
        "+22370000001",
    )
    assert ok["messageId"].startswith("ATXid_") and len(ok["messageId"]) == 6 + 32
    assert (bad["statusCode"], bad["status"], bad["messageId"]) == (403, "InvalidPhoneNumber", "None")


def test_unreachable_callback_is_dropped_and_the_emulator_keeps_serving(api: FlaskClient) -> None:
    api.post("/version1/messaging", data=SEND, headers=KEY)

    wait_for(lambda: api.get("/messages").get_json()[0]["status"] == "Success")
    assert api.post("/version1/messaging", data=SEND, headers=KEY).status_code == 201
    assert api.post("/send-from-phone", json={"from": "+22370000001", "text": "AIDE"}).status_code == 502


def test_same_seed_gives_the_same_fault_sequence(api: FlaskClient) -> None:
    def statuses() -> list[int]:
        api.post("/reset")
        api.post("/faults", json={"http_500_rate": 0.5, "seed": 7})
        return [api.post("/version1/messaging", data=SEND, headers=KEY).status_code for _ in range(12)]

    first = statuses()

    assert first == statuses()
    assert {201, 500} == set(first)


@pytest.mark.parametrize(
    "faults",
    [
        {"http_500_rate": 1.5},
        {"fail_next": -1},
        {"reject_status": "Nope"},
        {"typo_rate": 0.1},
        {"seed": "x"},
        [],
    ],
)
def test_bad_fault_settings_are_refused_and_change_nothing(api: FlaskClient, faults: object) -> None:
    before = api.get("/faults").get_json()

    response = api.post("/faults", json=faults)

    assert response.status_code == 400
    assert api.get("/faults").get_json() == before


def test_reset_clears_messages_and_faults(api: FlaskClient) -> None:
    api.post("/faults", json={"fail_next": 3, "reject_rate": 1})
    api.post("/send-from-phone", json={"from": "+22370000001", "text": "AIDE"})

    assert api.post("/reset").status_code == 204

    assert api.get("/messages").get_json() == []
    faults = api.get("/faults").get_json()
    assert (faults["fail_next"], faults["reject_rate"]) == (0, 0.0)


def test_delete_messages_clears_them(api: FlaskClient) -> None:
    api.post("/version1/messaging", data=SEND, headers=KEY)

    assert api.delete("/messages").status_code == 204

    assert api.get("/messages").get_json() == []
