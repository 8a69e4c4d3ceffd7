"""`POST /sms/delivery` as Africa's Talking sends it: (label, form, status, what it changes)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import OutboundSms, SmsStatus


@pytest.fixture
def message(db) -> OutboundSms:
    row = OutboundSms(to_e164="+22370000001", to_hash="h" * 64, sender="INFO", body="x", purpose="test",
                      status=SmsStatus.ACCEPTED, gateway_id="ATXid_abc")  # fmt: skip
    db.add(row)
    db.commit()
    return row


def report(client, **fields: str):
    form = {"id": "ATXid_abc", "status": "Success", "phoneNumber": "+22370000001", "networkCode": "61001",
            "retryCount": "0", **fields}  # fmt: skip
    return client.post("/sms/delivery", data={k: v for k, v in form.items() if v is not None})


def status_of(db) -> tuple[str | None, str | None]:
    db.expire_all()
    row = db.scalar(select(OutboundSms))
    return row.delivery_status, row.delivery_reason


@pytest.mark.parametrize("status", ["Sent", "Submitted", "Buffered", "Rejected", "Success", "Failed",
                                    "AbsentSubscriber", "Expired"])  # fmt: skip
def test_every_documented_status_is_recorded(client, db, message, status: str) -> None:
    assert report(client, status=status).status_code == 200
    assert status_of(db)[0] == status


def test_status_only_moves_forward(client, db, message) -> None:
    report(client, status="Buffered")
    report(client, status="Success")
    response = report(client, status="Sent")
    assert response.status_code == 200 and "ignored" in response.get_data(as_text=True)
    assert status_of(db) == ("Success", None)
    report(client, status="Failed", failureReason="UserInBlacklist")
    assert status_of(db) == ("Success", None)


def test_failure_reason_is_kept(client, db, message) -> None:
    report(client, status="Failed", failureReason="DeliveryFailure")
    assert status_of(db) == ("Failed", "DeliveryFailure")


def test_unknown_status_is_kept_as_text(client, db, message) -> None:
    report(client, status="Queued")
    assert status_of(db)[0] == "Queued"


def test_unknown_id_is_answered_200_and_changes_nothing(client, db, message) -> None:
    assert report(client, id="ATXid_other").status_code == 200
    assert status_of(db) == (None, None)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [({"id": None}, "missing field id"), ({"status": None}, "missing field status"), ({"id": ""}, "missing field id"),
     ({"status": "x" * 41}, "longer than 40"), ({"failureReason": "x" * 300}, "longer than 200")],
)  # fmt: skip
def test_malformed_reports_get_a_400_with_the_reason(client, db, message, fields, reason: str) -> None:
    response = report(client, **fields)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert status_of(db) == (None, None)
