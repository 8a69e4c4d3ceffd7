"""Raw Africa's Talking answers, the courier way: each body as the gateway sends it, and its outcome."""

from __future__ import annotations

import json

import pytest

from config import Settings
from gateway import GATEWAYS, AfricasTalkingGateway, Outcome, OutgoingSms, SmsGateway, gateway_from_settings
from gateway.africastalking import result_from_response

SMS = OutgoingSms("+22370000001", "Bonjour")


def body(*recipients: dict[str, object], message: str = "Sent to 1/1 Total Cost: XOF 25.0000") -> str:
    return json.dumps({"SMSMessageData": {"Message": message, "Recipients": list(recipients)}})


def recipient(code: int, status: str, message_id: str = "None", cost: str = "0") -> dict[str, object]:
    return {"statusCode": code, "number": SMS.to, "status": status, "cost": cost, "messageId": message_id}


@pytest.mark.parametrize(
    ("label", "http_status", "raw", "outcome"),
    [
        ("processed", 201, body(recipient(100, "Processed", "ATXid_1", "XOF 25.0000")), Outcome.ACCEPTED),
        ("sent", 201, body(recipient(101, "Success", "ATXid_1", "XOF 25.0000")), Outcome.ACCEPTED),
        ("queued", 201, body(recipient(102, "Queued", "ATXid_1", "XOF 25.0000")), Outcome.ACCEPTED),
        ("risk hold", 201, body(recipient(401, "RiskHold")), Outcome.HELD),
        ("invalid sender", 201, body(recipient(402, "InvalidSenderId")), Outcome.PERMANENT),
        ("invalid number", 201, body(recipient(403, "InvalidPhoneNumber")), Outcome.PERMANENT),
        ("unsupported type", 201, body(recipient(404, "UnsupportedNumberType")), Outcome.PERMANENT),
        ("no balance", 201, body(recipient(405, "InsufficientBalance")), Outcome.HELD),
        ("blacklisted", 201, body(recipient(406, "UserInBlacklist")), Outcome.PERMANENT),
        ("no route", 201, body(recipient(407, "CouldNotRoute")), Outcome.PERMANENT),
        ("do not disturb", 201, body(recipient(409, "DoNotDisturbRejection")), Outcome.PERMANENT),
        ("internal error", 201, body(recipient(500, "InternalServerError")), Outcome.RETRY),
        ("gateway error", 201, body(recipient(501, "GatewayError")), Outcome.RETRY),
        ("rejected by gateway", 201, body(recipient(502, "RejectedByGateway")), Outcome.RETRY),
        ("unknown code", 201, body(recipient(499, "SomethingNew")), Outcome.RETRY),
        ("code as text", 200, body(recipient("101", "Success", "ATXid_1")), Outcome.ACCEPTED),  # type: ignore[arg-type]
        ("no recipients", 201, body(message="InvalidSenderId"), Outcome.PERMANENT),
        ("unreadable 2xx", 201, "<html>oops</html>", Outcome.RETRY),
        ("http 500", 500, "Internal Server Error", Outcome.RETRY),
        ("http 503", 503, "", Outcome.RETRY),
        ("http 429", 429, "Too Many Requests", Outcome.RETRY),
        ("http 401", 401, "The supplied authentication is invalid", Outcome.HELD),
        ("http 400", 400, "Request is missing required form field 'to'", Outcome.PERMANENT),
        ("http 404", 404, "Not Found", Outcome.PERMANENT),
    ],
)
def test_gateway_answer_is_classified(label: str, http_status: int, raw: str, outcome: Outcome) -> None:
    assert result_from_response(http_status, raw, SMS).outcome is outcome, label


def test_accepted_answer_keeps_id_cost_and_gateway_part_count() -> None:
    raw = body({**recipient(101, "Success", "ATXid_abc", "XOF 75.0000"), "messageParts": 3})

    result = result_from_response(201, raw, SMS)

    assert (result.gateway_id, result.cost, result.segments, result.status) == (
        "ATXid_abc",
        "XOF 75.0000",
        3,
        "Success",
    )


def test_the_recipient_matching_our_number_is_the_one_read() -> None:
    other = {**recipient(403, "InvalidPhoneNumber"), "number": "+22370000002"}
    ours = recipient(101, "Success", "ATXid_ours", "XOF 25.0000")

    assert result_from_response(201, body(other, ours), SMS).gateway_id == "ATXid_ours"


def test_error_text_is_stripped_of_numbers() -> None:
    result = result_from_response(400, "Invalid phone number: +223 7000 0001 and 22370000001", SMS)

    assert "7000" not in result.detail and "<number>" in result.detail


def test_number_the_sdk_would_refuse_is_permanent_without_raising() -> None:
    gateway = AfricasTalkingGateway("sandbox", "key", "http://127.0.0.1:9", timeout_seconds=1)

    result = gateway.send(OutgoingSms("70000001", "Bonjour"))

    assert (result.outcome, result.status) == (Outcome.PERMANENT, "InvalidPhoneNumber")
    assert "70000001" not in result.detail


def test_outgoing_sms_repr_hides_the_number() -> None:
    assert "22370000001" not in repr(SMS)


@pytest.mark.parametrize(
    ("username", "api_url", "base"),
    [
        ("sira", "http://127.0.0.1:8025", "http://127.0.0.1:8025/version1"),
        ("sira", "http://127.0.0.1:8025/version1/", "http://127.0.0.1:8025/version1"),
        ("sira", None, "https://api.africastalking.com/version1"),
        ("sandbox", None, "https://api.sandbox.africastalking.com/version1"),
    ],
)
def test_base_url_is_ours_when_given_else_the_sdks(username: str, api_url: str | None, base: str) -> None:
    gateway = AfricasTalkingGateway(username, "key", api_url, timeout_seconds=1)

    assert gateway._service._make_url("/messaging") == base + "/messaging"


def test_settings_choose_the_africastalking_adapter() -> None:
    gateway = gateway_from_settings(Settings(at_api_url="http://127.0.0.1:8025", at_timeout_seconds=3.5))

    assert isinstance(gateway, AfricasTalkingGateway) and isinstance(gateway, SmsGateway)
    assert gateway.timeout_seconds == 3.5 and gateway.endpoint == "127.0.0.1:8025"


def test_unknown_gateway_name_fails_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="SMS_GATEWAY='twilio'"):
        gateway_from_settings(Settings(sms_gateway="twilio"))


class _OtherAggregator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, sms: OutgoingSms) -> None:  # pragma: no cover - only its presence matters
        raise NotImplementedError


def test_another_aggregator_plugs_in_by_configuration_only() -> None:
    gateway = gateway_from_settings(Settings(sms_gateway=f"{__name__}:_OtherAggregator"))

    assert isinstance(gateway, _OtherAggregator)
    assert "africastalking" in GATEWAYS
