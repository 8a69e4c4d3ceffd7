"""Erasure reaches USSD sessions still open on the phone, and what the gateway says of them later.

A session is keyed by the gateway's session id, which erasure does not know: the tombstone it
leaves carries its time, and every session begun before it goes, wherever it still is.
"""

from __future__ import annotations

from flask import Flask
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import Role
from models.phone import phone_hash
from models.returnee import Returnee
from models.ussd import UssdSession, UssdStep
from tests.conftest import PHONE_HASH_KEY, Phone, flush_transcripts
from tests.test_admin_access import token
from tests.test_admin_referrals import signed_in

NUMBER = "+22370000131"
DIGEST = phone_hash(NUMBER, PHONE_HASH_KEY)


def erase_on_the_admin(app: Flask, db: Session) -> None:
    person = db.scalar(select(Returnee).where(Returnee.phone_hash == DIGEST))
    client = signed_in(app, db, Role.COORDINATOR)
    done = client.post(
        f"/admin/returnees/{person.id}/erase", data={"confirm": "1", "csrf_token": token(client)}
    )
    assert done.status_code == 302, done.text


def half_registered(live_server) -> Phone:
    """French chosen, Register, first name typed: the session's state holds the name."""
    phone = Phone(live_server.url, number=NUMBER)
    phone.dial()
    phone.send("1")
    assert "Awa" not in phone.send("1")
    assert phone.send("Awa").startswith("CON ")
    return phone


def nothing_kept(redis: Redis, phone: Phone) -> bool:
    """Of the session, only its birth is left (as before any erasure); no resume copy."""
    return redis.hgetall(f"ussd:s:{phone.session_id}") == {b"b": b"0"} and not redis.exists(
        f"ussd:resume:{DIGEST}"
    )


def test_a_session_open_at_erasure_ends_at_its_next_step_and_leaves_nothing(
    app: Flask, db: Session, redis: Redis, live_server, database_url: str
) -> None:
    phone = half_registered(live_server)
    erase_on_the_admin(app, db)
    reply = phone.send("2")
    assert reply.startswith("END ") and "effacees" in reply, reply
    assert nothing_kept(redis, phone)
    assert phone.repeat() == reply  # the gateway's retry, whose text holds the name, replays nothing
    assert nothing_kept(redis, phone)
    flush_transcripts(database_url)
    db.expire_all()
    assert db.scalar(select(UssdSession).where(UssdSession.session_id == phone.session_id)) is None
    assert db.scalar(select(UssdStep).where(UssdStep.session_id == phone.session_id)) is None
    assert db.scalar(select(Returnee)) is None  # the step registered nothing


def test_the_number_starts_afresh_after_erasure_and_its_new_session_is_kept(
    app: Flask, db: Session, redis: Redis, live_server, database_url: str
) -> None:
    old = half_registered(live_server)
    erase_on_the_admin(app, db)
    new = Phone(live_server.url, number=NUMBER)
    first = new.dial()
    assert "Français" in first or "Francais" in first, first  # no resume offer, no language known
    new.send("1")
    flush_transcripts(database_url)
    db.expire_all()
    kept = db.scalar(select(UssdSession).where(UssdSession.session_id == new.session_id))
    assert kept is not None and kept.phone_hash == DIGEST
    assert len(db.scalars(select(UssdStep).where(UssdStep.session_id == new.session_id)).all()) == 2
    assert db.scalar(select(UssdSession).where(UssdSession.session_id == old.session_id)) is None


def test_an_end_of_session_notice_after_erasure_brings_nothing_back(
    app: Flask, db: Session, redis: Redis, live_server, database_url: str
) -> None:
    phone = half_registered(live_server)
    erase_on_the_admin(app, db)
    notice = {"sessionId": phone.session_id, "phoneNumber": NUMBER, "status": "Incomplete",
              "durationInMillis": "40000", "hopsCount": "4", "serviceCode": "*384*7472#"}  # fmt: skip
    answer = app.test_client().post("/ussd/events", data=notice)
    assert answer.status_code == 200
    flush_transcripts(database_url)
    db.expire_all()
    assert db.scalar(select(UssdSession).where(UssdSession.session_id == phone.session_id)) is None
    assert db.scalar(select(UssdStep).where(UssdStep.session_id == phone.session_id)) is None


def test_an_erasure_holds_when_redis_forgot_the_session_and_its_tombstone(
    app: Flask, db: Session, redis: Redis, live_server, database_url: str
) -> None:
    """Redis restarted empty (here: flushed) after the erasure: the gateway's `text` still holds
    the first name, and the database's record of the erasure stops it being registered again."""
    phone = half_registered(live_server)
    erase_on_the_admin(app, db)
    redis.flushdb()
    for answer in ["2", "3"]:
        reply = phone.send(answer)
        print("after the flush, step", phone.history, "->", reply)
        assert reply.startswith("END ") and "effacees" in reply, reply
    flush_transcripts(database_url)
    db.expire_all()
    assert db.scalar(select(Returnee)) is None
    assert db.scalar(select(UssdSession).where(UssdSession.session_id == phone.session_id)) is None
    new = Phone(live_server.url, number=NUMBER)
    assert new.dial().startswith("CON ")  # a new dial of the number is a new life


def test_a_session_id_stays_its_phones_when_redis_lost_its_owner(
    app: Flask, db: Session, redis: Redis, live_server, database_url: str
) -> None:
    """The session's row names its phone: once Redis forgot the session, another number sending
    the same `sessionId` is refused, not given a session of its own under that id."""
    phone = half_registered(live_server)
    flush_transcripts(database_url)
    redis.flushdb()
    response = phone.http.post(
        live_server.url + "/ussd",
        data={"sessionId": phone.session_id, "serviceCode": phone.service_code,
              "phoneNumber": "+22370000199", "networkCode": "61001", "text": ""},
        timeout=10,
    )  # fmt: skip
    assert (response.status_code, response.text) == (400, "sessionId belongs to another phoneNumber")
    assert not redis.exists(f"ussd:s:{phone.session_id}")
