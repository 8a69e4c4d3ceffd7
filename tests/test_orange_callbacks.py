"""Orange's JSON notifications at `/sms/orange/*`, as Orange posts them: (label, body, answer, effect)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app import create_app
from models import InboundSms, OutboundSms, SmsStatus
from tests.conftest import app_settings

SECRET = "s" * 40


@pytest.fixture
def message(db) -> OutboundSms:
    row = OutboundSms(to_e164="+22370000001", to_hash="h" * 64, sender="INFO", body="x", purpose="test",
                      status=SmsStatus.ACCEPTED, gateway_id="orange:0a1b2c")  # fmt: skip
    db.add(row)
    db.commit()
    return row


def receipt(status: str = "DeliveredToTerminal", message_id: str = "0a1b2c") -> dict[str, object]:
    return {"deliveryInfoNotification": {
        "callbackData": "sira",
        "resourceURL": f"https://api.orange.com/smsmessaging/v1/outbound/tel%3A%2B22300000000/requests/{message_id}",
        "deliveryInfo": {"address": "tel:+22370000001", "deliveryStatus": status}}}  # fmt: skip


def incoming(text: str = "AIDE", message_id: str = "in-1", **changes: object) -> dict[str, object]:
    message = {"senderAddress": "tel:+22370000001", "destinationAddress": "tel:+22300000000", "message": text,
               "messageId": message_id, "dateTime": "2026-12-02T04:00:00.000Z", **changes}  # fmt: skip
    return {"inboundSMSMessageNotification": {"callbackData": "sira", "inboundSMSMessage": message}}


def post(client, path: str, body: object, prefix: str = ""):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(f"{prefix}/sms/orange/{path}", data=raw, content_type="application/json")


def status_of(db) -> tuple[str | None, str | None]:
    db.expire_all()
    row = db.scalar(select(OutboundSms))
    return row.delivery_status, row.delivery_reason


@pytest.mark.parametrize(
    ("orange", "ours"),
    [("DeliveredToTerminal", ("Success", None)), ("DeliveryImpossible", ("Failed", "DeliveryImpossible")),
     ("DeliveredToNetwork", ("Sent", None)), ("MessageWaiting", ("Buffered", None)),
     ("DeliveryUncertain", ("Sent", None)), ("SomethingNew", ("SomethingNew", None))],
)  # fmt: skip
def test_a_receipt_moves_the_message_to_the_status_at_would_give(client, db, message, orange, ours) -> None:
    assert post(client, "delivery", receipt(orange)).status_code == 200
    assert status_of(db) == ours


def test_receipt_statuses_only_move_forward(client, db, message) -> None:
    post(client, "delivery", receipt("DeliveredToTerminal"))
    assert "ignored" in post(client, "delivery", receipt("DeliveredToNetwork")).text
    assert status_of(db) == ("Success", None)


def test_a_receipt_for_an_unknown_message_is_answered_200_and_changes_nothing(client, db, message) -> None:
    assert post(client, "delivery", receipt(message_id="other")).status_code == 200
    assert status_of(db) == (None, None)


@pytest.mark.parametrize(
    ("body", "reason"),
    [("{not json", "body is not JSON"), (b"\xff\xfe", "not UTF-8"), ("[]", "missing object deliveryInfoNotification"),
     ({"deliveryInfoNotification": {"deliveryInfo": {"deliveryStatus": "DeliveredToTerminal"}}}, "resourceURL"),
     ({"deliveryInfoNotification": {"resourceURL": "x/1", "deliveryInfo": {}}}, "deliveryStatus"),
     (receipt(status="x" * 41), "longer than 40"), (receipt(message_id="a b"), "id has characters")],
)  # fmt: skip
def test_a_bad_receipt_gets_a_400_with_the_reason_and_changes_nothing(
    client, db, message, body, reason
) -> None:
    response = post(client, "delivery", body)
    assert response.status_code == 400 and reason in response.text
    assert status_of(db) == (None, None)


def test_an_incoming_sms_is_stored_once_and_answered(client, db) -> None:
    assert post(client, "incoming", incoming("AIDE")).text.startswith("ok:")
    assert post(client, "incoming", incoming("AIDE")).text == "already handled"
    assert db.scalar(select(func.count()).select_from(InboundSms)) == 1
    assert db.scalar(select(func.count()).select_from(OutboundSms)) == 1  # the help reply


@pytest.mark.parametrize(
    ("body", "reason"),
    [("", "body is not JSON"), ({"inboundSMSMessageNotification": {}}, "missing object inboundSMSMessage"),
     (incoming(message=None), "inboundSMSMessage.message"), (incoming(senderAddress="tel:hello"), "from is not"),
     (incoming(dateTime="yesterday"), "date"), (incoming(text="x" * 1601), "longer than 1600")],
)  # fmt: skip
def test_a_bad_incoming_sms_gets_a_400_with_the_reason_and_nothing_stored(client, db, body, reason) -> None:
    response = post(client, "incoming", body)
    assert response.status_code == 400 and reason in response.text
    assert db.scalar(select(func.count()).select_from(InboundSms)) == 0


def test_orange_callbacks_sit_behind_the_callback_secret_and_the_size_cap(database_url, redis, db) -> None:
    client = create_app(app_settings(database_url, callback_secret=SECRET)).test_client()
    assert post(client, "incoming", incoming()).status_code == 404
    assert post(client, "incoming", incoming(), prefix="/wrong").status_code == 404
    assert post(client, "incoming", incoming(text="x" * 5000), prefix=f"/{SECRET}").status_code == 413
    assert db.scalar(select(func.count()).select_from(InboundSms)) == 0
    assert post(client, "incoming", incoming(), prefix=f"/{SECRET}").status_code == 200
