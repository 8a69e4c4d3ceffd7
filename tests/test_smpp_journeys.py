"""Sira's own conversation over SMPP, end to end: gateway emulator -> connector -> conversation ->
database -> referral -> the provider's SMS (through a real worker and the SMS gateway emulator),
on both back-ends and real Redis, in the three languages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from config import parse_smpp_links
from gateway.emulator.smsc import UssdGatewayEmulator
from gateway.smpp import Connector
from models import Referral, Returnee, UssdSession
from models.phone import phone_hash
from tests.conftest import PHONE_HASH_KEY, app_settings, flush_transcripts
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import code_in, inbox, run_worker, seeded_app
from web.context import sira

PHONE = "+22370000101"
APEJ = "+22370000002"  # jobs in Bamako, first choice of the sample directory
# (language choice, the registration's last screen in that language)
LANGUAGES = {
    "fr": ("1", "Vous etes inscrit"),
    "bm": ("2", "I togo sebenna"),
    "en": ("3", "You are registered"),
}


@pytest.fixture
def app(database_url: str, redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.fixture
def smsc() -> Iterator[UssdGatewayEmulator]:
    emulator = UssdGatewayEmulator(reply_timeout=10)
    emulator.start()
    yield emulator
    emulator.stop()


def connect(app: Flask, smsc: UssdGatewayEmulator) -> Connector:
    links = parse_smpp_links(
        f"smpp://sira:sira@127.0.0.1:{smsc.port}?name=orange&network=61002&reconnect_min=0.1"
    )
    connector = Connector(
        links,
        sira(app).converse,
        service_code="*384*7472#",
        redact=lambda value: phone_hash(value, PHONE_HASH_KEY),
        workers=4,
    )
    connector.start()
    assert connector.wait_bound(5)
    return connector


@pytest.fixture
def connector(app, smsc) -> Iterator[Connector]:
    connector = connect(app, smsc)
    yield connector
    connector.stop()


def run(smsc: UssdGatewayEmulator, number: int, answers: list[str]) -> list[str]:
    screens = [smsc.wait_screen(number, 1, timeout=10).text]
    for i, answer in enumerate(answers, start=2):
        smsc.answer(number, answer)
        screens.append(smsc.wait_screen(number, i, timeout=10).text)
    return screens


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_returnee_registers_over_smpp(smsc, connector, db, database_url, lang) -> None:
    choice, done = LANGUAGES[lang]
    number = smsc.dial(PHONE)
    screens = run(smsc, number, [choice, "3", "Awa", "2", "3", "1", "1", "1", "1"])
    assert "1 Francais" in screens[0] and "2 Bamanankan" in screens[0]
    assert done in screens[-1] and not smsc.sessions[number].screens[-1].end  # on to the need
    returnee = db.scalar(select(Returnee))
    assert (returnee.phone_e164, returnee.first_name, returnee.language) == (PHONE, "Awa", lang)
    assert returnee.is_registered
    flush_transcripts(database_url)
    session = db.scalar(select(UssdSession))
    assert session.phone_hash == returnee.phone_hash and session.network_code == "61002"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_returnee_asks_for_help_over_smpp_and_the_provider_is_alerted_by_sms(
    smsc, connector, gateway, database_url, db, lang
) -> None:
    choice, _ = LANGUAGES[lang]
    number = smsc.dial(PHONE)
    screens = run(smsc, number, [choice, "1", "Awa", "2", "3", "1", "1", "1", "1", "1", "1"])
    assert smsc.sessions[number].screens[-1].end
    code = code_in(screens[-1])
    referral = db.scalar(select(Referral))
    assert referral.code == code and db.get(Returnee, referral.returnee_id).phone_e164 == PHONE
    run_worker(database_url, gateway)
    assert any(code in text for text in inbox(gateway, APEJ))


def test_a_session_cut_off_over_smpp_is_resumed_on_the_next_dial(smsc, connector, db) -> None:
    first = smsc.dial(PHONE)
    run(smsc, first, ["1", "3", "Awa", "2"])  # the network drops after "woman": no more answers
    again = smsc.dial(PHONE)
    assert again != first
    offer = smsc.wait_screen(again, 1, timeout=10)
    assert "Reprendre" in offer.text and not offer.end
    screens = run(smsc, again, ["1", "2", "1", "1", "1", "1"])
    assert "Votre age" in screens[1] and "Vous etes inscrit" in screens[-1]
    assert db.scalar(select(Returnee)).first_name == "Awa"


def test_a_connector_restarted_mid_session_ends_it_politely_and_the_next_dial_offers_to_resume(
    app, smsc, connector
) -> None:
    number = smsc.dial(PHONE)
    run(smsc, number, ["1", "3", "Awa", "2"])
    connector.stop()
    restarted = connect(app, smsc)
    try:
        smsc.answer(number, "3")
        ended = smsc.wait_screen(number, 6, timeout=10)
        assert ended.end and "Service indisponible" in ended.text  # not the age question: a new id
        again = smsc.dial(PHONE)
        assert "Reprendre" in smsc.wait_screen(again, 1, timeout=10).text
    finally:
        restarted.stop()


def test_dial_through_over_smpp_skips_the_first_menu(smsc, connector) -> None:
    number = smsc.dial(PHONE, "*384*7472*3#")
    assert "Register" in smsc.wait_screen(number, 1, timeout=10).text


def test_a_repeated_answer_pdu_over_smpp_registers_once(smsc, connector, db) -> None:
    number = smsc.dial(PHONE)
    run(smsc, number, ["3", "3", "Awa", "2", "3", "1", "1", "1"])
    smsc.drop_after_next_deliver()  # the consent leaves, the bind drops before its response
    smsc.answer(number, "1")
    assert "You are registered" in smsc.wait_screen(number, 10, timeout=10).text
    assert len(db.scalars(select(Returnee)).all()) == 1


def test_the_smpp_connector_command_serves_the_gateway_and_stops_on_sigterm(
    smsc, database_url, redis
) -> None:
    env = {
        **os.environ,
        **{key.upper(): str(value) for key, value in app_settings(database_url).items()},
        "SMPP_CONNECTIONS": f"smpp://sira:sira@127.0.0.1:{smsc.port}?name=orange&network=61002",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "smpp-connector"],
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert smsc.wait_for(lambda: smsc.bound, timeout=15)
        number = smsc.dial(PHONE)
        assert "1 Francais" in smsc.wait_screen(number, 1, timeout=10).text
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    assert process.returncode == 0, output
    assert "SMPP connector: orange" in output and PHONE[1:] not in output
