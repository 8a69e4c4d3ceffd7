"""The conversation every USSD transport shares, driven with the neutral step a transport makes.

The journeys themselves run over both kinds of transport (the `phone` fixture); these are the
rules that differ when a transport sends only the newest input, as an operator's SMPP gateway
does: no history to rebuild a lost session from, and a request that may be delivered twice.
"""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.ussd import StepRefused, UssdStep
from models import Returnee
from models import UssdStep as StepRow
from tests.conftest import NeutralPhone, flush_transcripts
from web.context import sira

NUMBER = "+22370000141"


def registering(app: Flask) -> NeutralPhone:
    """French chosen, Register, the first name typed and the sex chosen."""
    phone = NeutralPhone(app, number=NUMBER)
    phone.dial()
    for answer in ("1", "3", "Awa", "2"):
        reply = phone.send(answer)
    assert reply.startswith("CON ") and "age" in reply.lower(), reply
    return phone


def register_to_the_end(phone: NeutralPhone) -> str:
    for answer in ("2", "1", "1", "1", "1"):
        reply = phone.send(answer)
    return reply


def test_a_request_delivered_twice_is_one_step_with_one_reply(
    app: Flask, db: Session, database_url: str
) -> None:
    phone = registering(app)
    reply = register_to_the_end(phone)
    assert "Vous etes inscrit" in reply, reply
    assert phone.repeat() == reply  # the same request again: the same screen, nothing done twice
    assert db.scalar(select(func.count()).select_from(Returnee)) == 1
    flush_transcripts(database_url)
    steps = db.scalars(select(StepRow.seq).where(StepRow.session_id == phone.session_id)).all()
    assert steps == sorted(set(steps)) and len(steps) == 10  # the dial and nine answers, once each


def test_the_same_digit_sent_again_as_a_new_request_is_a_new_answer(app: Flask) -> None:
    phone = NeutralPhone(app, number=NUMBER)
    phone.dial()
    menu = phone.send("1")  # French: the main menu
    assert "S'inscrire" in menu
    assert "Votre prenom" in phone.send("3")
    again = phone.send("3")  # the same digit, in a new request: an answer (not a name), re-asked
    assert "Lettres seulement" in again, again


def test_a_lost_session_without_history_ends_politely_and_registers_nothing(
    app: Flask, db: Session, redis: Redis
) -> None:
    phone = registering(app)
    redis.flushdb()  # Redis restarted empty: the session's state is gone
    reply = phone.send("2")
    assert reply.startswith("END ") and "indisponible" in reply, reply
    assert db.scalar(select(Returnee.first_name)) is None
    again = phone.dial()  # dialling again starts afresh, from what the database knows
    assert again.startswith("CON ") and "S'inscrire" in again, again


def test_a_session_id_of_another_phone_is_refused_and_changes_nothing(app: Flask, redis: Redis) -> None:
    phone = registering(app)
    before = redis.hgetall(f"ussd:s:{phone.session_id}")
    stranger = UssdStep(phone.session_id, "+22370000142", "*384*7472#", "2", cumulative=False,
                        transport="smpp", step_id="99")  # fmt: skip
    with pytest.raises(StepRefused):
        sira(app).converse(stranger)
    assert redis.hgetall(f"ussd:s:{phone.session_id}") == before
    assert "Votre age" not in phone.send("2")  # the owner goes on where they were
