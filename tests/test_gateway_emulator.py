"""The Africa's Talking adapter, through the real SDK, against the emulator running as a real process."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator

import pytest
from gateway_helpers import CallbackReceiver, EmulatorProcess, fresh_number, wait_for

from gateway import AfricasTalkingGateway, Outcome, OutgoingSms

pytestmark = pytest.mark.usefixtures("clean_emulator")


@pytest.fixture(scope="module")
def emulator(emulator_to_receiver: EmulatorProcess) -> EmulatorProcess:
    return emulator_to_receiver


@pytest.fixture
def gateway(emulator: EmulatorProcess) -> Iterator[AfricasTalkingGateway]:
    gateway = AfricasTalkingGateway("sandbox", "test-key", emulator.url, timeout_seconds=2)
    yield gateway
    gateway.close()


def set_faults(emulator: EmulatorProcess, **faults: object) -> None:
    response = emulator.post("/faults", json=faults)
    assert response.status_code == 200, response.text


def test_accepted_message_has_id_and_cost_and_reaches_the_phone(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess
) -> None:
    number = fresh_number()

    result = gateway.send(OutgoingSms(number, "Votre demande R7K3Q est enregistrée.", sender="INFO"))

    assert result.outcome is Outcome.ACCEPTED
    assert result.gateway_id and result.gateway_id.startswith("ATXid_")
    assert (result.status, result.status_code, result.cost, result.segments) == (
        "Success",
        101,
        "XOF 25.0000",
        1,
    )
    [stored] = emulator.messages_to(number)
    assert stored["id"] == result.gateway_id
    assert (stored["from"], stored["direction"], stored["segments"]) == ("INFO", "outbound", 1)
    assert [m["id"] for m in emulator.get(f"/inbox/{number}").json()] == [result.gateway_id]


def test_long_message_is_billed_per_part(gateway: AfricasTalkingGateway) -> None:
    result = gateway.send(OutgoingSms(fresh_number(), "x" * 161))

    assert (result.outcome, result.segments, result.cost) == (Outcome.ACCEPTED, 2, "XOF 50.0000")


def test_delivery_report_reaches_callback_with_the_gateway_id(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess, receiver: CallbackReceiver
) -> None:
    number = fresh_number()
    result = gateway.send(OutgoingSms(number, "Bonjour"))

    [report] = wait_for(lambda: receiver.on("/sms/delivery"))

    assert report.form == {
        "id": result.gateway_id,
        "status": "Success",
        "phoneNumber": number,
        "networkCode": "61001",
        "retryCount": "0",
    }
    assert emulator.messages_to(number)[0]["status"] == "Success"


def test_failed_delivery_reports_the_reason(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess, receiver: CallbackReceiver
) -> None:
    set_faults(emulator, delivery_failure_rate=1, delivery_failure_reason="UserInBlacklist")
    number = fresh_number()

    result = gateway.send(OutgoingSms(number, "Bonjour"))

    assert result.outcome is Outcome.ACCEPTED  # acceptance and delivery are two different facts
    [report] = wait_for(lambda: receiver.on("/sms/delivery"))
    assert (report.form["id"], report.form["status"]) == (result.gateway_id, "Failed")
    assert report.form["failureReason"] == "UserInBlacklist"
    assert emulator.messages_to(number)[0]["failure_reason"] == "UserInBlacklist"


def test_fail_next_gives_exactly_that_many_retries_then_acceptance(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess
) -> None:
    set_faults(emulator, fail_next=2)
    number = fresh_number()

    results = [gateway.send(OutgoingSms(number, "Bonjour")) for _ in range(3)]

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY, Outcome.ACCEPTED]
    assert [r.status_code for r in results] == [500, 500, 101]
    assert [m["id"] for m in emulator.messages_to(number)] == [results[2].gateway_id]


def test_slow_gateway_is_a_bounded_retry_and_may_still_send(emulator: EmulatorProcess) -> None:
    set_faults(emulator, timeout_rate=1, timeout_seconds=0.6)
    gateway = AfricasTalkingGateway("sandbox", "test-key", emulator.url, timeout_seconds=0.15)
    number = fresh_number()

    started = time.monotonic()
    result = gateway.send(OutgoingSms(number, "Bonjour"))
    elapsed = time.monotonic() - started

    assert (result.outcome, result.status, result.gateway_id) == (Outcome.RETRY, "Timeout", None)
    assert elapsed < 0.5
    # Like the real gateway, the slow answer was an acceptance: this is the one duplicate a retry
    # after a time-out can cause, which the product accepts.
    wait_for(lambda: emulator.messages_to(number))


def test_unreachable_gateway_is_a_quick_retry(emulator: EmulatorProcess) -> None:
    from gateway_helpers import free_port

    gateway = AfricasTalkingGateway(
        "sandbox", "test-key", f"http://127.0.0.1:{free_port()}", timeout_seconds=2
    )

    result = gateway.send(OutgoingSms(fresh_number(), "Bonjour"))

    assert (result.outcome, result.status) == (Outcome.RETRY, "ConnectionError")


@pytest.mark.parametrize(
    ("reject_status", "outcome", "code"),
    [
        ("InvalidPhoneNumber", Outcome.PERMANENT, 403),
        ("UnsupportedNumberType", Outcome.PERMANENT, 404),
        ("UserInBlacklist", Outcome.PERMANENT, 406),
        ("CouldNotRoute", Outcome.PERMANENT, 407),
        ("DoNotDisturbRejection", Outcome.PERMANENT, 409),
        ("InsufficientBalance", Outcome.HELD, 405),
        ("RiskHold", Outcome.HELD, 401),
        ("GatewayError", Outcome.RETRY, 501),
    ],
)
def test_rejection_by_the_gateway_is_classified(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess, reject_status: str, outcome: Outcome, code: int
) -> None:
    set_faults(emulator, reject_rate=1, reject_status=reject_status)

    result = gateway.send(OutgoingSms(fresh_number(), "Bonjour"))

    assert (result.outcome, result.status, result.status_code) == (outcome, reject_status, code)
    assert (result.gateway_id, result.cost) == (None, "0")


def test_number_the_network_does_not_know_is_permanent(gateway: AfricasTalkingGateway) -> None:
    result = gateway.send(OutgoingSms("+2237000001", "Bonjour"))  # 7 digits after +223

    assert (result.outcome, result.status, result.status_code) == (
        Outcome.PERMANENT,
        "InvalidPhoneNumber",
        403,
    )


def test_refused_sender_id_is_permanent_with_the_gateway_message(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess
) -> None:
    set_faults(emulator, reject_rate=1, reject_status="InvalidSenderId")

    result = gateway.send(OutgoingSms(fresh_number(), "Bonjour", sender="NOTMINE"))

    assert (result.outcome, result.detail, result.gateway_id) == (Outcome.PERMANENT, "InvalidSenderId", None)


def test_rejected_credentials_are_held_for_a_coordinator(emulator: EmulatorProcess) -> None:
    gateway = AfricasTalkingGateway("sandbox", "", emulator.url, timeout_seconds=2)

    result = gateway.send(OutgoingSms(fresh_number(), "Bonjour"))

    assert (result.outcome, result.status_code) == (Outcome.HELD, 401)
    assert "AT_API_KEY" in result.detail


def test_phone_numbers_never_reach_logs_or_results(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    number = fresh_number()
    caplog.set_level(logging.DEBUG)
    results = [gateway.send(OutgoingSms(number, "Bonjour"))]
    for faults in ({"fail_next": 1}, {"reject_rate": 1, "reject_status": "UserInBlacklist"}):
        set_faults(emulator, **faults)
        results.append(gateway.send(OutgoingSms(number, "Bonjour")))
    results.append(gateway.send(OutgoingSms(number.removeprefix("+"), "Bonjour")))  # not E.164

    assert [r.outcome for r in results] == [
        Outcome.ACCEPTED,
        Outcome.RETRY,
        Outcome.PERMANENT,
        Outcome.PERMANENT,
    ]
    digits = number.removeprefix("+")
    assert digits not in caplog.text
    assert all(digits not in repr(r) for r in results)
    assert results[0].gateway_id in caplog.text


def test_inbox_page_shows_the_phone_its_messages(
    gateway: AfricasTalkingGateway, emulator: EmulatorProcess
) -> None:
    number = fresh_number()
    gateway.send(OutgoingSms(number, "Code <R7K3Q> & suite"))
    gateway.send(OutgoingSms(fresh_number(), "pour un autre"))

    page = emulator.get(f"/inbox/{number}", params={"format": "html"})

    assert page.headers["Content-Type"].startswith("text/html")
    assert "Code &lt;R7K3Q&gt; &amp; suite" in page.text
    assert "pour un autre" not in page.text


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_send_from_phone_posts_the_inbound_form_to_sira(
    emulator: EmulatorProcess, receiver: CallbackReceiver, encoding: str
) -> None:
    number = fresh_number()
    payload = {"from": number, "text": "OK R7K3Q"}

    response = emulator.post("/send-from-phone", **{encoding if encoding == "json" else "data": payload})

    assert response.status_code == 200
    assert response.json()["status_code"] == 200
    assert response.json()["body"] == "received /sms/incoming"
    [inbound] = receiver.on("/sms/incoming")
    assert {k: inbound.form[k] for k in ("from", "to", "text")} == {
        "from": number,
        "to": "7472",
        "text": "OK R7K3Q",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", inbound.form["date"])
    assert inbound.form["id"] == response.json()["id"] and inbound.form["linkId"]
    assert [m["direction"] for m in emulator.get("/messages").json() if m["from"] == number] == ["inbound"]
