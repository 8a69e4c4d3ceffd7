"""The Kannel adapter's side of the wire: what it asks sendsms, how each answer is classified, and
how Kannel's callbacks are checked (bad input: a 400 with a reason, nothing written).

The same paths against a real Kannel are in tests/test_kannel_end_to_end.py.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from app import create_app
from config import ConfigError, Settings, load_settings
from gateway import GATEWAYS, KannelGateway, Outcome, OutgoingSms, SmsGateway, gateway_from_settings
from gateway.kannel import result_from_response
from models import InboundSms, OutboundSms, SmsStatus
from tests.conftest import app_settings
from tests.gateway_helpers import free_port

SMS = OutgoingSms("+22370000001", "Bonjour", sender="SIRA")
SECRET = "kannel-callback-secret-0123456789"


def gateway(**kwargs: object) -> KannelGateway:
    values: dict[str, object] = {"sendsms_url": "http://127.0.0.1:13013/cgi-bin/sendsms", "username": "sira",
                                 "password": "pw", "dlr_url": "http://sira.example/s3cret/sms/kannel/delivery",
                                 "timeout_seconds": 1.0, **kwargs}  # fmt: skip
    return KannelGateway(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("label", "http_status", "body", "outcome", "status"),
    [
        ("accepted", 202, "0: Accepted for delivery", Outcome.ACCEPTED, "Accepted"),
        ("queued, no SMSC bound", 202, "3: Queued for later delivery", Outcome.ACCEPTED, "Queued"),
        ("bad credentials", 403, "Authorization failed for sendsms", Outcome.HELD, "HTTP 403"),
        ("not allowed to set", 403, "Tried to change dlr_url to 'x', denied.", Outcome.HELD, "HTTP 403"),
        (
            "number black-listed",
            403,
            "Number(s) has/have been denied by white- and/or black-lists.",
            Outcome.PERMANENT,
            "HTTP 403",
        ),
        ("wrong URL", 404, "Not found", Outcome.HELD, "HTTP 404"),
        ("missing number", 400, "Missing receiver number, rejected", Outcome.PERMANENT, "HTTP 400"),
        ("bad charset", 400, "Charset or body misformed, rejected", Outcome.PERMANENT, "HTTP 400"),
        ("bearerbox refuses", 503, "Sending failed.", Outcome.RETRY, "HTTP 503"),
        ("server error", 500, "Internal Server Error", Outcome.RETRY, "HTTP 500"),
        ("too many", 429, "", Outcome.RETRY, "HTTP 429"),
        ("redirect", 302, "", Outcome.RETRY, "HTTP 302"),
    ],
)
def test_sendsms_answer_is_classified(
    label: str, http_status: int, body: str, outcome: Outcome, status: str
) -> None:
    result = result_from_response(http_status, body, SMS, "abc")

    assert (result.outcome, result.status) == (outcome, status), label
    assert result.gateway_id == ("abc" if outcome is Outcome.ACCEPTED else None)


def test_accepted_answer_carries_our_id_and_the_part_count() -> None:
    result = result_from_response(
        202, "0: Accepted for delivery", OutgoingSms("+22370000001", "ɛ" * 71), "abc"
    )

    assert (result.gateway_id, result.segments, result.status_code) == ("abc", 2, 202)


def test_error_text_is_stripped_of_numbers() -> None:
    result = result_from_response(400, "Number +22370000001 not allowed", SMS, "abc")

    assert "70000001" not in result.detail and "<number>" in result.detail


@pytest.mark.parametrize(
    ("text", "coding"),
    [("Bonjour, votre demande R7K3Q", 0), ("Prix: 10€ [ok]", 0), ("I ni ce, i ka ɲɛnabɔ", 2), ("🙂", 2)],
)
def test_gsm7_when_it_can_ucs2_when_it_must(text: str, coding: int) -> None:
    params = gateway().parameters(OutgoingSms("+22370000001", text, "SIRA"), "id1")

    assert (params["coding"], params["charset"], params["text"]) == (coding, "UTF-8", text)


def test_dlr_url_carries_our_id_and_asks_kannel_for_the_type() -> None:
    params = gateway(dlr_mask=19).parameters(SMS, "0123abcd")

    assert params["dlr-mask"] == 19
    url = str(params["dlr-url"])
    assert url.startswith("http://sira.example/s3cret/sms/kannel/delivery?")
    assert parse_qs(urlsplit(url).query) == {"id": ["0123abcd"], "type": ["%d"]}
    assert (params["from"], params["to"], params["username"], params["password"]) == (
        "SIRA",
        SMS.to,
        "sira",
        "pw",
    )


def test_no_dlr_asked_with_a_zero_mask_and_smsc_only_when_set() -> None:
    assert "dlr-url" not in gateway(dlr_mask=0).parameters(SMS, "x")
    assert "smsc" not in gateway().parameters(SMS, "x")
    assert gateway(smsc="orange").parameters(SMS, "x")["smsc"] == "orange"


def test_each_send_gets_its_own_id() -> None:
    """A retry is a new submission to Kannel; its delivery reports must not be taken for the first's."""
    port = free_port()
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(parse_qs(urlsplit(self.path).query)["dlr-url"][0])
            self.send_response(202)
            self.end_headers()
            self.wfile.write(b"0: Accepted for delivery")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kannel = gateway(sendsms_url=f"http://127.0.0.1:{port}/cgi-bin/sendsms")
        first, second = kannel.send(SMS), kannel.send(SMS)
    finally:
        server.shutdown()
    assert first.outcome is second.outcome is Outcome.ACCEPTED
    assert first.gateway_id != second.gateway_id
    assert [parse_qs(urlsplit(u).query)["id"][0] for u in seen] == [first.gateway_id, second.gateway_id]


def test_nobody_listening_is_a_retry_that_names_no_number_and_no_password(caplog) -> None:
    result = gateway(sendsms_url=f"http://127.0.0.1:{free_port()}/cgi-bin/sendsms").send(SMS)

    assert (result.outcome, result.status) == (Outcome.RETRY, "ConnectionError")
    said = result.detail + caplog.text
    assert "70000001" not in said and "pw" not in said.replace("password", "")


def test_a_hanging_kannel_is_cut_off_at_the_time_out() -> None:
    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        started = time.monotonic()
        result = gateway(
            sendsms_url=f"http://127.0.0.1:{listener.getsockname()[1]}/", timeout_seconds=0.3
        ).send(SMS)
    assert (result.outcome, result.status) == (Outcome.RETRY, "Timeout")
    assert time.monotonic() - started < 2


def test_settings_choose_the_kannel_adapter_with_the_secret_dlr_url() -> None:
    settings = Settings(sms_gateway="kannel", kannel_sendsms_url="http://10.0.0.5:13013/cgi-bin/sendsms",
                        kannel_password="pw", kannel_timeout_seconds=2.5, kannel_dlr_mask=3,
                        public_base_url="https://sira.example/", callback_secret=f"{SECRET},old")  # fmt: skip
    kannel = gateway_from_settings(settings)

    assert isinstance(kannel, KannelGateway) and isinstance(kannel, SmsGateway) and "kannel" in GATEWAYS
    assert kannel.timeout_seconds == 2.5 and kannel.endpoint == "10.0.0.5:13013"
    params = kannel.parameters(SMS, "abc")
    assert params["dlr-mask"] == 3
    assert str(params["dlr-url"]).startswith(f"https://sira.example/{SECRET}/sms/kannel/delivery?id=abc")


@pytest.mark.parametrize(
    "values",
    [
        {"SMS_GATEWAY": "kannel", "KANNEL_TIMEOUT_SECONDS": "60"},  # the client may outlast its job
        {"KANNEL_DLR_MASK": "32"},
        {"KANNEL_SENDSMS_URL": "ftp://kannel/cgi-bin/sendsms"},
        {"KANNEL_TIMEOUT_SECONDS": "0"},
    ],
)
def test_unsafe_kannel_settings_are_refused_at_start_up(values: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(values)
    assert any(name in str(refused.value) for name in values if name != "SMS_GATEWAY")


# --- Kannel's callbacks, through the app (real database and Redis) ---


@pytest.fixture
def app(database_url: str, redis: Redis) -> Flask:
    return create_app(app_settings(database_url, callback_secret=SECRET))


@pytest.fixture
def message(db) -> OutboundSms:
    row = OutboundSms(to_e164="+22370000001", to_hash="h" * 64, sender="INFO", body="x", purpose="test",
                      status=SmsStatus.ACCEPTED, gateway_id="0123abcd")  # fmt: skip
    db.add(row)
    db.commit()
    return row


def dlr(client, **query: str):
    return client.get(f"/{SECRET}/sms/kannel/delivery", query_string={"id": "0123abcd", "type": "1", **query})


def delivery_of(db) -> tuple[str | None, str | None]:
    db.expire_all()
    row = db.scalar(select(OutboundSms))
    return row.delivery_status, row.delivery_reason


@pytest.mark.parametrize(
    ("dlr_type", "status", "reason"),
    [("1", "Success", None), ("2", "Failed", "Kannel DLR type 2"), ("4", "Buffered", None),
     ("8", "Submitted", None), ("16", "Rejected", "Kannel DLR type 16")],
)  # fmt: skip
def test_each_dlr_type_maps_to_the_status_africastalking_would_report(
    client, db, message, dlr_type: str, status: str, reason: str | None
) -> None:
    assert dlr(client, type=dlr_type).status_code == 200
    assert delivery_of(db) == (status, reason)


def test_a_late_submit_ack_does_not_undo_a_delivery(client, db, message) -> None:
    dlr(client, type="1")
    assert dlr(client, type="8").get_data(as_text=True) == "ignored: status does not move forward"
    assert delivery_of(db)[0] == "Success"


def test_dlr_for_an_id_we_never_gave_is_answered_200(client, db, message) -> None:
    response = dlr(client, id="someone-elses")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "unknown id")
    assert delivery_of(db) == (None, None)


@pytest.mark.parametrize(
    ("query", "reason"),
    [({"type": "3"}, "type 3 is not one of Kannel's DLR types"), ({"type": "%d"}, "type has characters"),
     ({"type": ""}, "missing field type"), ({"id": ""}, "missing field id"), ({"id": "a b"}, "id has characters")],
)  # fmt: skip
def test_a_malformed_dlr_is_a_400_with_a_reason_that_changes_nothing(
    client, db, message, query, reason
) -> None:
    response = dlr(client, **query)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert delivery_of(db) == (None, None)


def mo(client, **query: str):
    values = {"from": "+22370000009", "to": "36001", "text": "AIDE", "id": "5f0c-uuid", "time": "1796186265",
              **query}  # fmt: skip
    url = f"/{SECRET}/sms/kannel/incoming"
    return client.get(url, query_string=values)


def inbound(db) -> list[InboundSms]:
    db.expire_all()
    return list(db.scalars(select(InboundSms)))


def test_incoming_by_get_url_is_handled_as_africastalkings(client, db) -> None:
    response = mo(client, text="aide")
    assert (response.status_code, response.get_data(as_text=True)) == (200, "ok: help")
    [stored] = inbound(db)
    assert (stored.gateway_id, stored.from_e164, stored.to, stored.text) == ("5f0c-uuid", "+22370000009", "36001",
                                                                             "aide")  # fmt: skip
    assert stored.sent_at.replace(tzinfo=None).isoformat() == "2026-12-02T04:37:45"
    assert db.scalar(select(func.count()).select_from(OutboundSms)) == 1  # the help reply
    assert mo(client, text="aide").get_data(as_text=True) == "already handled"


def test_incoming_by_post_url_reads_the_text_from_the_body(client, db) -> None:
    """As Kannel 1.4.5's post-url sends it (seen with a real smsbox): the charset quoted."""
    query = {"from": "+22370000009", "to": "36001", "id": "5f0c-post", "time": "1796186265"}
    response = client.post(f"/{SECRET}/sms/kannel/incoming", query_string=query, data="ɛw aide".encode(),
                           content_type='text/plain; charset="UTF-8"')  # fmt: skip
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [m.text for m in inbound(db)] == ["ɛw aide"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [({"from": "bob"}, "from is not a phone number"), ({"from": ""}, "missing field from"),
     ({"id": ""}, "missing field id"), ({"time": "yesterday"}, "time has characters"),
     ({"time": "99999999999"}, "not a plausible Unix time"), ({"to": "36001;drop"}, "to has characters"),
     ({"text": "AIDE\x00"}, "text has characters"), ({"text": "x" * 1601}, "longer than 1600")],
)  # fmt: skip
def test_a_malformed_incoming_sms_is_a_400_with_a_reason_that_changes_nothing(
    client, db, redis, query, reason
):
    response = mo(client, **query)
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert inbound(db) == [] and db.scalar(select(func.count()).select_from(OutboundSms)) == 0


def test_an_incoming_sms_without_text_is_a_400(client, db) -> None:
    url = f"/{SECRET}/sms/kannel/incoming"
    response = client.get(
        url, query_string={"from": "+22370000009", "to": "36001", "id": "x", "time": "1796186265"}
    )
    assert response.status_code == 400 and "missing field text" in response.get_data(as_text=True)


def test_kannel_callbacks_sit_behind_the_callback_secret(client, db, message) -> None:
    assert client.get("/sms/kannel/delivery", query_string={"id": "0123abcd", "type": "1"}).status_code == 404
    assert client.get("/wrong/sms/kannel/incoming", query_string={"from": "+22370000009"}).status_code == 404
    assert delivery_of(db) == (None, None) and inbound(db) == []
