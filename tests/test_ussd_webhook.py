"""Raw gateway payloads, the courier way: (label, form, expected status, expected body)."""

from __future__ import annotations

import logging

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from infra.keys import STEP_BUFFER
from models import Returnee, UssdSession, UssdStep
from tests.conftest import Phone, app_settings, flush_transcripts, redis_dump
from web.context import sira

GOOD = {"sessionId": "ATUid_1", "serviceCode": "*384*7472#", "phoneNumber": "+22370000001",
        "networkCode": "61001", "text": ""}  # fmt: skip

TABLE = [
    ("first request", {}, 200, "CON "),
    ("national number without +223", {"phoneNumber": "70000001"}, 200, "CON "),
    ("00223 prefix", {"phoneNumber": "0022370000001"}, 200, "CON "),
    ("no text field at all", {"text": None}, 200, "CON "),
    ("missing sessionId", {"sessionId": None}, 400, "missing field sessionId"),
    ("blank sessionId", {"sessionId": "  "}, 400, "missing field sessionId"),
    ("missing phoneNumber", {"phoneNumber": None}, 400, "missing field phoneNumber"),
    ("missing serviceCode", {"serviceCode": None}, 400, "missing field serviceCode"),
    ("phone is letters", {"phoneNumber": "hello"}, 400, "phoneNumber is not a valid phone number"),
    ("phone too short", {"phoneNumber": "+2231"}, 400, "phoneNumber is not a valid phone number"),
    ("body over the size cap", {"text": "1" * 5000}, 413, "request body larger than 4096 bytes"),
    ("text too long for a step", {"text": "1*" * 1000 + "1"}, 200, "END Desole"),
    ("control character in text", {"text": "1*\x00"}, 200, "END Desole"),
    ("phone with letters mixed in", {"phoneNumber": "+223700O0001"}, 400, "not a valid phone number"),
    ("sessionId with spaces", {"sessionId": "AT Uid 1"}, 400, "sessionId has characters"),
    ("serviceCode with letters", {"serviceCode": "*384*abc#"}, 400, "serviceCode has characters"),
    ("huge sessionId", {"sessionId": "x" * 500}, 400, "field sessionId is longer"),
]


@pytest.mark.parametrize(("label", "change", "status", "body"), TABLE, ids=[row[0] for row in TABLE])
def test_gateway_payloads(
    client: FlaskClient, db, redis, label: str, change: dict, status: int, body: str
) -> None:
    form = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    response = client.post("/ussd", data=form)
    assert response.status_code == status, label
    assert response.mimetype == "text/plain"
    assert (
        response.get_data(as_text=True).startswith(body)
        if status == 200
        else body in response.get_data(as_text=True)
    )
    logged = db.scalar(select(func.count()).select_from(UssdStep)) + redis.llen(STEP_BUFFER)
    assert logged == (1 if body == "CON " else 0)


def test_a_rejected_request_stores_nothing_anywhere(client: FlaskClient, db, redis) -> None:
    before = redis_dump(redis)  # the fixture's mark of Redis's age only
    client.post("/ussd", data={**GOOD, "phoneNumber": "nope"})
    assert db.scalar(select(func.count()).select_from(UssdSession)) == 0
    assert redis_dump(redis) == before


def test_end_of_session_notice_is_stored_and_always_answered_200(client: FlaskClient, db) -> None:
    client.post("/ussd", data=GOOD)
    notice = {"sessionId": "ATUid_1", "status": "Incomplete", "phoneNumber": "+22370000001", "hopsCount": "3",
              "durationInMillis": "41230", "errorMessage": "", "input": "1*1", "serviceCode": "*384*7472#"}  # fmt: skip
    assert client.post("/ussd/events", data=notice).status_code == 200
    session = db.scalar(select(UssdSession))
    assert (session.end_status, session.end_hops, session.end_duration_ms) == ("Incomplete", 3, 41230)
    assert "+22370000001" not in str(session.end_report)
    assert client.post("/ussd/events", data={"sessionId": "unknown", "status": "Failed"}).status_code == 200
    assert db.scalar(select(UssdSession).where(UssdSession.session_id == "unknown")).end_status == "Failed"
    assert client.post("/ussd/events", data={}).status_code == 200


@pytest.mark.parametrize(
    "figure", ["inf", "-Infinity", "1e400", "9223372036854775808", "1e20", "-5", "nan", "3x"]
)
def test_a_figure_no_column_can_hold_is_left_out_and_the_rest_of_the_notice_stored(
    client: FlaskClient, db, figure: str
) -> None:
    notice = {"sessionId": "ATUid_odd", "status": "Failed", "hopsCount": figure, "durationInMillis": figure}
    assert client.post("/ussd/events", data=notice).text == "ok"
    session = db.scalar(select(UssdSession).where(UssdSession.session_id == "ATUid_odd"))
    assert (session.end_status, session.end_hops, session.end_duration_ms) == ("Failed", None, None)
    assert session.end_report["hopsCount"] == figure


def test_a_session_id_from_another_phone_is_refused_and_changes_nothing(
    client: FlaskClient, db, redis
) -> None:
    """A session is its opener's: the same id with another number (a gateway fault, a forged
    request) must not carry on with, or register, the first phone's answers."""
    history = ["1", "1", "Awa", "2"]
    for n in range(len(history) + 1):
        client.post("/ussd", data={**GOOD, "text": "*".join(history[:n])})
    before = redis_dump(redis)
    for text in ["*".join([*history, "3"]), ""]:
        other = client.post("/ussd", data={**GOOD, "phoneNumber": "+22370000002", "text": text})
        assert (other.status_code, other.text) == (400, "sessionId belongs to another phoneNumber")
    assert redis_dump(redis) == before
    assert client.post("/ussd", data={**GOOD, "text": "*".join([*history, "3"])}).text.startswith("CON ")
    assert db.scalar(select(func.count()).select_from(Returnee)) == 1  # the first phone's, from its language


def test_two_web_processes_serving_alternate_steps_give_one_conversation(database_url: str, redis) -> None:
    """No state in the process: two apps (as two gunicorn workers) share Redis and the database."""
    apps = [create_app(app_settings(database_url)).test_client() for _ in range(2)]
    history: list[str] = []
    replies = []
    for i, answer in enumerate([None, "1", "3", "Awa", "2", "3", "98", "20", "1", "2", "1"]):
        if answer is not None:
            history.append(answer)
        response = apps[i % 2].post("/ussd", data={**GOOD, "text": "*".join(history)})
        replies.append(response.get_data(as_text=True))
    assert replies[-1].startswith("CON ") and "Vous etes inscrit" in replies[-1]
    with sira(apps[0].application).sessions() as session:
        assert session.scalar(select(Returnee)).region == "bandiagara"


def test_phone_numbers_never_reach_redis_or_the_logs(phone: Phone, redis, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    phone.dial()
    for answer in ("1", "3", "Awa", "2", "3", "1", "1", "1"):
        phone.send(answer)
    phone.dial()  # leaves a resumable copy behind
    stored = redis_dump(redis)
    assert b"ussd:resume:" in stored, "the session should be in Redis"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for form in ("22370000001", "70000001", "70 00 00 01", "Awa"):
        assert form not in logged and form.encode() not in stored


def test_redis_down_the_step_is_still_answered_by_replaying_the_history(database_url: str, redis) -> None:
    app = create_app(app_settings(database_url, redis_url="redis://127.0.0.1:1/0"))
    client = app.test_client()
    history: list[str] = []
    for answer in [None, "1", "3", "Awa"]:
        if answer is not None:
            history.append(answer)
        reply = client.post("/ussd", data={**GOOD, "text": "*".join(history)}).get_data(as_text=True)
    assert reply.startswith("CON ") and "Vous etes" in reply


def test_database_down_gives_a_polite_end(redis) -> None:
    app = create_app(app_settings("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    response = app.test_client().post("/ussd", data=GOOD)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("END Service indisponible")


class Broken(RuntimeError):
    """A bug inside a step, injected: nothing in the step raises this on its own."""


def _break_the_engine(app, monkeypatch: pytest.MonkeyPatch) -> None:
    def feed(state: object, text: str) -> None:
        raise Broken("injected")

    monkeypatch.setattr(sira(app).engine, "feed", feed)


def test_an_unexpected_failure_inside_a_step_ends_politely_in_production(
    database_url: str, redis, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(app_settings(database_url, raise_step_errors=False))
    _break_the_engine(app, monkeypatch)
    with caplog.at_level(logging.ERROR, logger="web.ussd"):
        response = app.test_client().post("/ussd", data=GOOD)
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("END Service indisponible")
    assert "unexpected failure during a USSD step" in caplog.text


def test_under_test_an_unexpected_failure_inside_a_step_fails_the_test(
    database_url: str, redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(app_settings(database_url))
    _break_the_engine(app, monkeypatch)
    with pytest.raises(Broken):
        app.test_client().post("/ussd", data=GOOD)


def test_steps_without_effects_reach_the_transcript_through_the_buffer(
    client: FlaskClient, db, redis, database_url: str
) -> None:
    for text in ("", "9", "9*7"):
        client.post("/ussd", data={**GOOD, "text": text})
    assert (
        db.scalar(select(func.count()).select_from(UssdSession)) == 0
    )  # nothing written on the request path
    assert redis.llen(STEP_BUFFER) == 3
    flush_transcripts(database_url)
    session = db.scalar(select(UssdSession))
    assert session.session_id == "ATUid_1" and session.origin == {"language": None, "registered": False}
    steps = db.scalars(select(UssdStep).order_by(UssdStep.seq)).all()
    assert [(s.seq, s.user_input) for s in steps] == [(0, ""), (1, "9"), (2, "7")]
    assert "Choix invalide" in steps[1].screen and redis.llen(STEP_BUFFER) == 0
