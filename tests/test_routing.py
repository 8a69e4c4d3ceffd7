"""Routes and prefixes as configured, and delivery reports of two gateways that give the same id.

Failover itself is tested from the outside in tests/test_routing_failover.py.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from config import ConfigError, load_settings
from gateway import AfricasTalkingGateway, OrangeGateway, router_from_settings
from models import InboundSms, OutboundSms, SmsStatus
from tests.conftest import ORANGE_SENDER

ROUTES = (
    "at=africastalking?api_url=http://127.0.0.1:9001&cost=XOF 25; orange=orange?api_url=http://127.0.0.1:9002"
)
PREFIXES = "7 82-84 90-94=orange,at; 6 89 95-99=at,orange; 50=at; +33=at"
ORANGE = {"ORANGE_SENDER_ADDRESS": ORANGE_SENDER}  # required with an Orange route


def test_each_number_gets_the_routes_of_its_longest_prefix_and_the_rest_the_default() -> None:
    routing = load_settings(ORANGE, sms_routes=ROUTES, sms_route_prefixes=PREFIXES).routing
    assert routing.names_for("+22370000001") == ("orange", "at")
    assert routing.names_for("+22383000001") == ("orange", "at")  # 82-84
    assert routing.names_for("+22385000001") == ("at", "orange")  # no prefix: the default, every route
    assert routing.names_for("+22366000001") == ("at", "orange")
    assert routing.names_for("+22350000001") == ("at",)
    assert routing.names_for("+33612345678") == ("at",)  # written with +: the whole number
    assert [(r.name, r.kind, r.cost) for r in routing.routes] == [("at", "africastalking", "XOF 25"),
                                                                  ("orange", "orange", "")]  # fmt: skip


def test_each_route_builds_its_gateway_with_its_own_settings_and_the_rest_from_the_environment() -> None:
    settings = load_settings(
        {**ORANGE, "ORANGE_CLIENT_ID": "ours"}, sms_routes=ROUTES, sms_route_prefixes=PREFIXES
    )
    router = router_from_settings(settings)
    assert isinstance(router.routes["at"].gateway, AfricasTalkingGateway)
    orange = router.routes["orange"].gateway
    assert isinstance(orange, OrangeGateway)
    assert [r.name for r in router.routes_for("+22390000001")] == ["orange", "at"]


def test_without_routes_sms_gateway_takes_every_number_as_before() -> None:
    router = router_from_settings(load_settings({}))
    assert [(r.name, r.kind) for r in router.routes_for("+22370000001")] == [
        ("africastalking", "africastalking")
    ]
    assert isinstance(router.routes["africastalking"].gateway, AfricasTalkingGateway)
    assert [
        r.kind for r in router_from_settings(load_settings(ORANGE, sms_gateway="orange")).routes.values()
    ] == ["orange"]


@pytest.mark.parametrize(
    ("routes", "prefixes", "message"),
    [
        ("", "7=at", "SMS_ROUTES must define them"),
        ("at=africastalking", "7=orange", "with routes of SMS_ROUTES"),
        ("at=africastalking?nonsense=1", "", "has no setting 'nonsense'"),
        ("at=africastalking?timeout_seconds=soon", "", "must be a number"),
        ("At!=africastalking", "", "must be name=kind"),
        ("at=africastalking; at=orange", "", "the same name"),
        ("at=africastalking", "7 7=at", "appears twice"),
        ("at=africastalking", "94-90=at", "the smaller first"),
        ("at=africastalking", "7x=at", "is not a prefix"),
        ("at=africastalking?api_url=ftp://example.org", "", "at_api_url must start with http"),
        ("k=kannel?sendsms_url=smsbox", "", "kannel_sendsms_url must start with http"),
        ("o=orange?timeout_seconds=0", "", "orange_timeout_seconds must be positive"),
        ("o=orange?timeout_seconds=20", "", "the slowest route's"),
    ],
)
def test_a_bad_route_or_prefix_fails_at_start_up_in_one_line(
    routes: str, prefixes: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings({"SMS_ROUTES": routes, "SMS_ROUTE_PREFIXES": prefixes})
    assert "\n" not in str(raised.value)


def test_an_unknown_gateway_kind_fails_when_the_routes_are_built() -> None:
    with pytest.raises(ValueError, match="route twilio"):
        router_from_settings(load_settings({}, sms_routes="twilio=twilio"))


@pytest.fixture
def same_id_twice(db) -> tuple[int, int]:
    """Two messages whose gateways, Africa's Talking and Orange, gave them the same id."""
    rows = [OutboundSms(to_e164="+22370000001", to_hash="h" * 64, body="x", purpose="test", route=route,
                        status=SmsStatus.ACCEPTED, gateway_id=stored)
            for route, stored in (("at", "abc123"), ("orange", "orange:abc123"))]  # fmt: skip
    db.add_all(rows)
    db.commit()
    return rows[0].id, rows[1].id


def test_a_delivery_report_lands_on_the_message_of_the_route_that_sent_it(client, db, same_id_twice) -> None:
    at_id, orange_id = same_id_twice
    receipt = {"deliveryInfoNotification": {"callbackData": "sira",
               "resourceURL": "https://api.orange.com/smsmessaging/v1/outbound/x/requests/abc123",
               "deliveryInfo": {"address": "tel:+22370000001", "deliveryStatus": "DeliveredToTerminal"}}}  # fmt: skip
    answer = client.post("/sms/orange/delivery", data=json.dumps(receipt), content_type="application/json")
    assert answer.status_code == 200 and answer.text == "ok"
    answer = client.post(
        "/sms/delivery", data={"id": "abc123", "status": "Failed", "failureReason": "Rejected"}
    )
    assert answer.status_code == 200 and answer.text == "ok"
    db.expire_all()
    statuses = dict(db.execute(select(OutboundSms.id, OutboundSms.delivery_status)).all())
    assert statuses == {at_id: "Failed", orange_id: "Success"}


def test_two_gateways_incoming_sms_with_the_same_id_are_two_messages(client, db) -> None:
    client.post("/sms/incoming", data={"from": "+22370000001", "to": "7472", "text": "AIDE", "id": "in-1",
                                       "date": "2026-12-02 05:00:00"})  # fmt: skip
    note = {"inboundSMSMessageNotification": {"callbackData": "sira", "inboundSMSMessage": {
        "senderAddress": "tel:+22366000001", "destinationAddress": "tel:+22300000000", "message": "AIDE",
        "messageId": "in-1", "dateTime": "2026-12-02T05:00:00.000Z"}}}  # fmt: skip
    answer = client.post("/sms/orange/incoming", data=json.dumps(note), content_type="application/json")
    assert answer.status_code == 200 and answer.text.startswith("ok"), answer.text
    assert sorted(db.scalars(select(InboundSms.gateway_id))) == ["in-1", "orange:in-1"]


def test_a_gateway_kind_written_in_capitals_is_the_same_kind_everywhere() -> None:
    """A kind is read whatever its case (Orange, AfricasTalking): its route options, the ids its
    delivery reports are found by and the Orange checks all see the one lower-case kind."""
    routing = load_settings(
        ORANGE,
        sms_routes="o=Orange?api_url=http://127.0.0.1:9002; at=AfricasTalking?api_url=http://127.0.0.1:9001",
    ).routing
    assert [(r.kind, dict(r.options)) for r in routing.routes] == [
        ("orange", {"orange_api_url": "http://127.0.0.1:9002"}),
        ("africastalking", {"at_api_url": "http://127.0.0.1:9001"}),
    ]
    assert [r.kind for r in load_settings(ORANGE, sms_gateway="Orange").routing.routes] == ["orange"]
    with pytest.raises(ConfigError, match="ORANGE_SENDER_ADDRESS"):
        load_settings({}, sms_gateway="ORANGE")
