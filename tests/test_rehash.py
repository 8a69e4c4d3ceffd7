"""Rotating PHONE_HASH_KEY with `flask rehash-phones`: registered returnees are found again under
the new key; a hash with no number behind it cannot follow and is counted."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from sqlalchemy import select

from app import create_app
from models import InboundSms, Returnee, UssdSession
from models.phone import phone_hash
from tests.conftest import PHONE_HASH_KEY, app_settings, flush_transcripts
from web.context import sira

NEW_KEY = "new-phone-hash-key-" + "z" * 32
AWA = "+22370000101"


def dial(app: Flask, number: str, text: str = "", session_id: str = "ATUid_r") -> str:
    form = {"sessionId": session_id, "serviceCode": "*384*7472#", "phoneNumber": number, "text": text}
    return app.test_client().post("/ussd", data=form).get_data(as_text=True)


def test_after_a_rotation_a_registered_returnee_is_known_again(
    app: Flask, database_url: str, redis: Redis
) -> None:
    assert "Vous etes inscrit" in dial(app, AWA, "1*3*Zanmba*2*3*1*1*1*1")  # registered
    assert dial(app, "+22370000102", "1", "ATUid_x").startswith("CON ")  # chose a language, never registered
    app.test_client().post("/sms/incoming", data={"from": AWA, "to": "7472", "text": "AIDE", "id": "in-1",
                                                  "date": "2017-05-03 06:04:45"})  # fmt: skip
    assert redis.keys("limit:*")
    rotated = create_app(
        app_settings(database_url, phone_hash_key=NEW_KEY, previous_phone_hash_key=PHONE_HASH_KEY)
    )
    refused = rotated.test_cli_runner().invoke(args=["rehash-phones"])
    assert refused.exit_code == 1 and "still buffered" in refused.output  # old hashes would come back
    flush_transcripts(database_url)
    result = rotated.test_cli_runner().invoke(args=["rehash-phones"])
    assert result.exit_code == 0, result.output
    assert "returnee: 1" in result.output and "returnees_left_behind: 1" in result.output
    with sira(rotated).sessions() as s:
        awa = s.scalar(select(Returnee).where(Returnee.phone_hash == phone_hash(AWA, NEW_KEY)))
        assert awa is not None and awa.first_name == "Zanmba"
        assert s.scalar(select(InboundSms.from_hash)) == phone_hash(AWA, NEW_KEY)
        sessions = dict(s.execute(select(UssdSession.session_id, UssdSession.phone_hash)).all())
        assert sessions.get("ATUid_r", phone_hash(AWA, NEW_KEY)) == phone_hash(AWA, NEW_KEY)
    assert not redis.keys("limit:*") and not redis.keys("ussd:profile:*")
    assert dial(rotated, AWA, "", "ATUid_2").startswith(
        "CON Sira, services du CNRM"
    )  # known: no language prompt
    flush_transcripts(database_url)
    again = rotated.test_cli_runner().invoke(args=["rehash-phones"])
    assert "returnee: 0" in again.output  # a second run finds nothing left under the old key


def test_the_command_refuses_without_the_old_key(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["rehash-phones"])
    assert result.exit_code != 0 and "PREVIOUS_PHONE_HASH_KEY" in result.output
