"""The Orange adapter against the emulator's Orange face, over real HTTP: tokens, sends, faults."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest
from gateway_helpers import EmulatorProcess, fresh_number, wait_for

from config import ConfigError, Settings, load_settings
from gateway import (
    GATEWAYS,
    AfricasTalkingGateway,
    OrangeGateway,
    Outcome,
    OutgoingSms,
    gateway_from_settings,
)
from gateway.orange import delivery_fields, incoming_fields, result_from_response, units_left
from tests.conftest import ORANGE_SENDER

SMS = OutgoingSms("+22370000001", "Bonjour")


pytestmark = pytest.mark.usefixtures("clean_emulator")


@pytest.fixture(scope="module")
def emulator(emulator_to_receiver: EmulatorProcess) -> EmulatorProcess:
    return emulator_to_receiver


@pytest.fixture
def gateway(emulator: EmulatorProcess) -> Iterator[OrangeGateway]:
    gateway = OrangeGateway(emulator.url, "client", "secret", "+22300000000", "SIRA", timeout_seconds=2)
    yield gateway
    gateway.close()


def set_faults(emulator: EmulatorProcess, **faults: object) -> None:
    response = emulator.post("/faults", json=faults)
    assert response.status_code == 200, response.text


def tokens_issued(emulator: EmulatorProcess) -> int:
    return int(emulator.get("/faults").json()["tokens_issued"])


def test_a_token_is_fetched_once_and_reused_for_every_send(gateway, emulator) -> None:
    number = fresh_number()
    results = [gateway.send(OutgoingSms(number, f"Message {i}", sender="INFO")) for i in range(3)]
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * 3
    assert tokens_issued(emulator) == 1
    stored = emulator.messages_to(number)
    assert [m["id"] for m in stored] == [r.gateway_id for r in results]
    assert {m["from"] for m in stored} == {"INFO"} and stored[0]["gateway"] == "orange"


def test_concurrent_sends_share_one_token(gateway, emulator) -> None:
    results: list[Outcome] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(gateway.send(OutgoingSms(fresh_number(), "x")).outcome)
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [Outcome.ACCEPTED] * 8 and tokens_issued(emulator) == 1


def test_a_token_about_to_expire_is_renewed_before_the_send(gateway, emulator) -> None:
    set_faults(emulator, orange_token_ttl=0.3)
    assert gateway.send(SMS).outcome is Outcome.ACCEPTED
    wait_for(
        lambda: gateway.send(SMS).outcome is Outcome.ACCEPTED and tokens_issued(emulator) >= 2, timeout=3
    )


def test_an_expired_token_is_renewed_once_on_401_and_the_sms_goes(gateway, emulator) -> None:
    assert gateway.send(SMS).outcome is Outcome.ACCEPTED
    set_faults(emulator, expire_tokens=True)  # Orange revokes what it issued: our cache does not know
    number = fresh_number()
    result = gateway.send(OutgoingSms(number, "Bonjour"))
    assert result.outcome is Outcome.ACCEPTED and tokens_issued(emulator) == 2
    assert [m["id"] for m in emulator.messages_to(number)] == [result.gateway_id]


def test_a_401_after_renewal_is_held_not_retried_in_a_loop(gateway, emulator) -> None:
    set_faults(emulator, orange_token_ttl=0)  # every token is dead on arrival, as with revoked access
    result = gateway.send(OutgoingSms(fresh_number(), "Bonjour"))
    assert (result.outcome, result.status_code) == (Outcome.HELD, 401)
    assert tokens_issued(emulator) == 2  # the first, and one renewal: no more


def test_an_exhausted_bundle_holds_the_message_and_sends_nothing(gateway, emulator) -> None:
    set_faults(emulator, orange_balance=0)
    number = fresh_number()
    result = gateway.send(OutgoingSms(number, "Bonjour"))
    assert (result.outcome, result.status_code) == (Outcome.HELD, 403)
    assert "bundle" in result.detail and emulator.messages_to(number) == []
    assert gateway.balance() == 0


def test_the_balance_is_the_bundle_left_and_each_part_spends_one(gateway, emulator) -> None:
    set_faults(emulator, orange_balance=10)
    gateway.send(OutgoingSms(fresh_number(), "x" * 161))  # two parts
    assert gateway.balance() == 8
    set_faults(emulator, expire_tokens=True)
    assert gateway.balance() == 8 and tokens_issued(emulator) == 2  # renewed once, as a send is


def test_429_is_retried_later_with_its_retry_after(gateway, emulator) -> None:
    set_faults(emulator, throttle_next=1, retry_after_seconds=42)
    number = fresh_number()
    result = gateway.send(OutgoingSms(number, "Bonjour"))
    assert (result.outcome, result.status_code, result.retry_after) == (Outcome.RETRY, 429, 42.0)
    assert emulator.messages_to(number) == []
    assert gateway.send(OutgoingSms(number, "Bonjour")).outcome is Outcome.ACCEPTED


def test_5xx_is_retried(gateway, emulator) -> None:
    set_faults(emulator, fail_next=1)
    result = gateway.send(SMS)
    assert (result.outcome, result.status_code, result.retry_after) == (Outcome.RETRY, 500, None)


def test_an_invalid_recipient_fails_for_good(gateway, emulator) -> None:
    result = gateway.send(OutgoingSms("+2237000", "Bonjour"))
    assert (result.outcome, result.status_code) == (Outcome.PERMANENT, 400)


def test_a_slow_answer_is_cut_by_the_timeout(emulator) -> None:
    gateway = OrangeGateway(emulator.url, "client", "secret", "+22300000000", "SIRA", timeout_seconds=0.3)
    gateway.tokens.get()
    set_faults(emulator, timeout_rate=1.0, timeout_seconds=1.0)
    result = gateway.send(SMS)
    assert (result.outcome, result.status) == (Outcome.RETRY, "Timeout")


def test_refused_credentials_or_an_unreachable_orange(emulator) -> None:
    nobody = OrangeGateway(emulator.url, "", "", "+22300000000", "SIRA", timeout_seconds=1)
    assert nobody.send(SMS).outcome is Outcome.HELD  # token refused: staff must fix the credentials
    down = OrangeGateway("http://127.0.0.1:1", "a", "b", "+22300000000", "SIRA", timeout_seconds=1)
    assert down.send(SMS).outcome is Outcome.RETRY
    assert down.balance() is None


def test_delivery_receipts_are_posted_as_orange_notifications(gateway, emulator, receiver) -> None:
    set_faults(emulator, delivery_failure_rate=1.0)
    result = gateway.send(OutgoingSms(fresh_number(), "Bonjour"))
    [posted] = wait_for(lambda: receiver.on("/sms/orange/delivery"))
    assert delivery_fields(posted.json) == {"id": result.gateway_id, "status": "Failed",
                                            "failureReason": "DeliveryImpossible"}  # fmt: skip


def test_no_number_in_logs_or_results(gateway, emulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    set_faults(emulator, throttle_next=1)
    results = [gateway.send(OutgoingSms("+22370009999", "x")), gateway.send(OutgoingSms("+2237000999", "x"))]
    assert "0009999" not in caplog.text and "000999" not in caplog.text
    assert all("000999" not in r.detail for r in results)


def body(message_id: str = "abc123") -> str:
    return json.dumps({"outboundSMSMessageRequest": {
        "address": "tel:+22370000001", "senderAddress": "tel:+22300000000", "senderName": "SIRA",
        "outboundSMSTextMessage": {"message": "Bonjour"},
        "resourceURL": f"https://api.orange.com/smsmessaging/v1/outbound/tel:+22300000000/requests/{message_id}"}})  # fmt: skip


POLICY = json.dumps(
    {"requestError": {"policyException": {"messageId": "POL3003", "text": "Insufficient credit"}}}
)
SERVICE = json.dumps(
    {"requestError": {"serviceException": {"messageId": "SVC0004", "text": "No valid addresses"}}}
)


@pytest.mark.parametrize(
    ("label", "http_status", "raw", "outcome"),
    [
        ("created", 201, body(), Outcome.ACCEPTED),
        ("unreadable 2xx", 201, "<html>", Outcome.RETRY),
        ("credentials", 401, json.dumps({"code": 42, "message": "Expired credentials"}), Outcome.HELD),
        ("bundle exhausted", 403, POLICY, Outcome.HELD),
        ("invalid address", 400, SERVICE, Outcome.PERMANENT),
        ("not found", 404, "", Outcome.PERMANENT),
        ("throttled", 429, "", Outcome.RETRY),
        ("server error", 500, "", Outcome.RETRY),
        ("unavailable", 503, "", Outcome.RETRY),
    ],
)
def test_orange_answer_is_classified(label: str, http_status: int, raw: str, outcome: Outcome) -> None:
    assert result_from_response(http_status, raw, SMS).outcome is outcome, label


def test_accepted_answer_keeps_the_request_id() -> None:
    assert result_from_response(201, body("R-77"), SMS).gateway_id == "R-77"


@pytest.mark.parametrize(("header", "seconds"), [("30", 30.0), ("0", 0.0), ("99999", 3600.0),
                                                 ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("-1", None)])  # fmt: skip
def test_retry_after_is_read_in_seconds_and_capped(header: str, seconds: float | None) -> None:
    assert result_from_response(429, "", SMS, {"Retry-After": header}).retry_after == seconds


def test_contracts_in_either_shape_give_the_malian_units() -> None:
    assert units_left([{"country": "MLI", "availableUnits": 5}, {"country": "SEN", "availableUnits": 9}]) == 5
    older = {"partnerContracts": {"contracts": [{"serviceContracts": [
        {"country": "MLI", "availableUnits": 7}, {"country": "MLI", "availableUnits": 3}]}]}}  # fmt: skip
    assert units_left(older) == 10


def test_notifications_become_at_fields() -> None:
    incoming = {"inboundSMSMessageNotification": {"inboundSMSMessage": {
        "senderAddress": "tel:+22370000002", "destinationAddress": "tel:+2237472", "message": "OK R7K3Q",
        "messageId": "m1", "dateTime": "2026-12-02T04:00:00.000Z"}}}  # fmt: skip
    assert incoming_fields(incoming) == {"from": "+22370000002", "to": "+2237472", "text": "OK R7K3Q",
                                         "id": "m1", "date": "2026-12-02T04:00:00.000Z"}  # fmt: skip
    for bad in ({}, [], {"inboundSMSMessageNotification": {"inboundSMSMessage": {"message": "x"}}}):
        with pytest.raises(ValueError):
            incoming_fields(bad)


def test_settings_choose_the_orange_adapter_and_check_its_values() -> None:
    settings = Settings(sms_gateway="orange", orange_timeout_seconds=2.5, orange_sender_address=ORANGE_SENDER)
    gateway = gateway_from_settings(settings)
    assert isinstance(gateway, OrangeGateway) and "orange" in GATEWAYS
    assert gateway.timeout_seconds == 2.5 and gateway.sender_address == ORANGE_SENDER
    with pytest.raises(ConfigError, match="ORANGE_SENDER_ADDRESS"):
        load_settings({}, orange_sender_address="SIRA")
    with pytest.raises(ConfigError, match="ORANGE_TIMEOUT_SECONDS"):
        load_settings(
            {}, sms_gateway="orange", orange_timeout_seconds=20.0, orange_sender_address=ORANGE_SENDER
        )
    load_settings({}, orange_timeout_seconds=20.0)  # another gateway in use: Orange's time-out is not held
    with pytest.raises(ConfigError, match="ORANGE_API_URL"):
        load_settings({}, orange_api_url="ftp://orange")


@pytest.mark.parametrize("faults", [{"orange_balance": -1}, {"orange_balance": 1.5}, {"expire_tokens": False},
                                    {"orange_token_ttl": "soon"}, {"throttle_next": True}])  # fmt: skip
def test_a_bad_orange_fault_is_refused_and_changes_nothing(emulator, faults: dict[str, object]) -> None:
    before = emulator.get("/faults").json()
    response = emulator.post("/faults", json={"throttle_next": 3, **faults})
    assert response.status_code == 400 and "error" in response.json()
    assert emulator.get("/faults").json() == before


def test_the_emulator_refuses_a_send_without_a_valid_token_or_body(emulator) -> None:
    url = "/smsmessaging/v1/outbound/tel%3A%2B22300000000/requests"
    assert emulator.post(url, json={}).status_code == 401
    token = emulator.post(
        "/oauth/v3/token", data={"grant_type": "client_credentials"}, auth=("a", "b")
    ).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert emulator.post(url, json={}, headers=headers).status_code == 400
    assert emulator.post("/oauth/v3/token", data={"grant_type": "client_credentials"}).status_code == 401


def test_both_faces_keep_their_messages_alike_each_naming_its_gateway(gateway, emulator) -> None:
    """One record shape for /messages and the inboxes, whichever face carried the SMS."""
    at = AfricasTalkingGateway("sandbox", "key", emulator.url, timeout_seconds=2)
    assert at.send(OutgoingSms(fresh_number(), "Bonjour")).outcome is Outcome.ACCEPTED
    assert gateway.send(OutgoingSms(fresh_number(), "Bonjour")).outcome is Outcome.ACCEPTED
    for face in ("/send-from-phone", "/orange/send-from-phone"):
        emulator.post(face, json={"from": fresh_number(), "text": "AIDE"})  # our receiver answers
    messages = emulator.get("/messages").json()
    assert sorted(m["gateway"] for m in messages) == ["africastalking", "africastalking", "orange", "orange"]
    assert len({frozenset(m) for m in messages}) == 1, messages  # the same fields
