"""Only the returnee's own choice sets their language, and an SMS brings nobody back.

A text sent before the first dial (AIDE, STATUT, STOP...) must not decide the language of the
menus: the first dial asks. After an erasure, an SMS is answered and leaves no record behind.
"""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from models import Returnee
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import inbox, seeded_app, text_service
from tests.test_registration_ussd import register

NEWCOMER = "+22370000444"
# language choice on the first dial, the main menu's "Ask for help" in that language
MENUS = {"1": ("fr", "Demander de l'aide"), "2": ("bm", "Deme nyini"), "3": ("en", "Ask for help")}


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.mark.parametrize(
    ("keyword", "choice"), [("AIDE", "1"), ("STATUT", "2"), ("STOP", "3"), ("bonjour", "2")]
)
def test_a_text_before_the_first_dial_does_not_choose_the_language(
    live_server, db, gateway, database_url, keyword: str, choice: str
) -> None:
    text_service(gateway, database_url, NEWCOMER, keyword)
    assert inbox(gateway, NEWCOMER), "every SMS gets an answer"
    phone = Phone(live_server.url, number=NEWCOMER)
    first = phone.dial()
    assert "1 Francais" in first and "2 Bamanankan" in first and "3 English" in first, first
    lang, ask_for_help = MENUS[choice]
    assert ask_for_help in phone.send(choice)
    db.expire_all()
    assert db.scalar(select(Returnee)).language == lang
    assert "2 Bamanankan" not in phone.dial()  # chosen once, remembered


def test_after_an_erasure_an_sms_is_answered_and_brings_no_record_back(
    live_server, db, gateway, database_url
) -> None:
    register(Phone(live_server.url, number=NEWCOMER), language="2")
    text_service(gateway, database_url, NEWCOMER, "SUPPRIMER")
    pin = next(word for word in inbox(gateway, NEWCOMER)[-1].split() if word.isdigit() and len(word) == 6)
    text_service(gateway, database_url, NEWCOMER, f"SUPPRIMER {pin}")
    db.expire_all()
    assert db.scalar(select(Returnee)) is None
    answered = len(inbox(gateway, NEWCOMER))
    for text in ("STATUT", "AIDE", "SUPPRIMER"):  # within the automatic replies a number may get
        text_service(gateway, database_url, NEWCOMER, text)
    replies = inbox(gateway, NEWCOMER)[answered:]
    assert len(replies) == 3, replies
    assert "aucune demande" in replies[0] and "rien a effacer" in replies[2], replies
    db.expire_all()
    assert db.scalar(select(Returnee)) is None
    assert "1 Francais" in Phone(live_server.url, number=NEWCOMER).dial()  # asked again, as a newcomer


def test_an_opt_out_notice_does_not_choose_the_language(live_server, client, db) -> None:
    assert client.post("/sms/optout", data={"phoneNumber": NEWCOMER}).status_code == 200
    assert db.scalar(select(Returnee)).opted_out_at is not None
    assert "2 Bamanankan" in Phone(live_server.url, number=NEWCOMER).dial()
