"""Menus follow the person's state: what they see depends on whether they registered and consented,
and a returnee who was not helped is not left with a thank-you."""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from models import Referral, Returnee
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import code_in, inbox, run_worker, seeded_app, text_service

RETURNEE = "+22370000555"
APEJ = "+22370000002"  # jobs in Bamako, first choice
SAY = {  # language choice, then the words each check looks for, plain as USSD and SMS show them
    "fr": {"choice": "1", "register": "S'inscrire", "update": "Modifier mon inscription",
           "registered": "Vous etes inscrit. Votre besoin", "employment": "(emploi)",
           "sent": "est envoyee", "withdraw": "Retirer mon accord", "erase": "1 Effacer mes donnees",
           "not_helped": "Un coordinateur va examiner votre demande", "thanks": "Merci"},
    "bm": {"choice": "2", "register": "Ka togo seben", "update": "N ka togoseben yelema",
           "registered": "I togo sebenna. I mago be mun na", "employment": "(baara)",
           "sent": "cira", "withdraw": "N ka sonni bo", "erase": "1 N ka kunnafoniw josi",
           "not_helped": "Nyemogo do bena i ka demenyini", "thanks": "I ni ce"},
    "en": {"choice": "3", "register": "Register", "update": "Update my details",
           "registered": "You are registered. What do you need", "employment": "(employment)",
           "sent": "is sent", "withdraw": "Withdraw my consent", "erase": "1 Erase my data",
           "not_helped": "A coordinator will look at your request", "thanks": "Thank you"},
}  # fmt: skip
REGISTRATION = ("Awa", "2", "3", "1", "1", "1", "1")  # first name ... region Bamako ... I agree


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


def plain_inbox(gateway: EmulatorProcess, number: str) -> list[str]:
    return [m.replace("è", "e").replace("ò", "o").replace("é", "e") for m in inbox(gateway, number)]


@pytest.mark.parametrize("lang", SAY)
def test_who_registers_goes_straight_on_to_the_need_and_then_sees_no_register(
    live_server, db, gateway, database_url, lang: str
) -> None:
    say = SAY[lang]
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    menu = phone.send(say["choice"])
    assert f"3 {say['register']}" in menu and say["update"] not in menu, menu
    phone.send("3")  # Register
    for answer in REGISTRATION:
        reply = phone.send(answer)
    assert reply.startswith("CON ") and say["registered"] in reply and "1 " in reply, reply  # no second dial
    assert say["employment"] in phone.send("1")
    sent = phone.send("1")
    assert sent.startswith("END ") and say["sent"] in sent and code_in(sent), sent
    for menu in (phone.dial(), phone.send("00")):  # a new call, and the main menu within it
        assert say["register"] not in menu and f"3 {say['update']}" in menu, menu
    assert db.scalar(select(Referral)).requested_category == "jobs"


@pytest.mark.parametrize("lang", SAY)
def test_withdrawing_consent_is_offered_only_to_who_gave_it(live_server, db, lang: str) -> None:
    say = SAY[lang]
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    phone.send(say["choice"])  # a language, nothing more: never registered
    mine = phone.send("5")  # My data
    assert say["withdraw"] not in mine and say["erase"] in mine, mine
    phone.send("00")
    phone.send("3")  # Register
    for answer in REGISTRATION:
        phone.send(answer)
    phone.send("00")
    assert say["withdraw"] in phone.send("5")


@pytest.mark.parametrize("lang", SAY)
def test_not_helped_after_a_closure_flags_the_referral_and_offers_a_new_request(
    live_server, db, gateway, database_url, lang: str
) -> None:
    say = SAY[lang]
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    phone.send(say["choice"])
    phone.send("1")  # Ask for help: register on the way
    for answer in REGISTRATION:
        phone.send(answer)
    phone.send("1")  # jobs and training
    code = code_in(phone.send("1"))
    run_worker(database_url, gateway)
    text_service(gateway, database_url, APEJ, f"OK {code}")
    text_service(gateway, database_url, APEJ, f"FINI {code}")
    text_service(gateway, database_url, RETURNEE, "2")
    answer = plain_inbox(gateway, RETURNEE)[-1]
    assert say["not_helped"] in answer and code in answer and "*384*7472#" in answer, answer
    assert say["thanks"] not in answer
    db.expire_all()
    referral = db.scalar(select(Referral).where(Referral.code == code))
    assert referral.feedback == "not_served" and referral.flagged_at is not None
    assert db.scalar(select(Returnee)).is_registered
