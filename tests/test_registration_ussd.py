"""A returnee registers by USSD, over the real webhook, against real Redis and a real database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from flask import Flask
from sqlalchemy import event, func, select, update

from flows.effects import Profile, SaveRegistration
from models import ConsentRecord, Returnee, UssdSession, UssdStep
from models.base import as_utc
from models.phone import phone_hash
from services.effects import Performed, perform, register_at_once
from tests.conftest import PHONE_HASH_KEY, Phone, flush_transcripts
from web.context import sira

# (language choice, fragments expected along the way, in that language)
LANGUAGES = {
    "fr": ("1", {"menu": "S'inscrire", "name": "Votre prenom", "hint": "Lettres seulement", "more": "98 Suite",
                 "invalid": "Choix invalide", "consent": "D'accord", "done": "Vous etes inscrit"}),
    "bm": ("2", {"menu": "Ka togo seben", "name": "I togo ye di", "hint": "2 ka se 30", "more": "98 Were",
                 "invalid": "Sugandili fili", "consent": "I sonna wa", "done": "I togo sebenna"}),
    "en": ("3", {"menu": "Register", "name": "Your first name", "hint": "Letters only", "more": "98 More",
                 "invalid": "Invalid choice", "consent": "Do you agree", "done": "You are registered"}),
}  # fmt: skip


@pytest.mark.parametrize("lang", LANGUAGES)
def test_full_registration_with_paging_back_home_bad_input_and_repeats(
    phone: Phone, db, database_url: str, lang: str
) -> None:
    choice, say = LANGUAGES[lang]
    first = phone.dial()
    assert first.startswith("CON ") and "1 Francais" in first and "2 Bamanankan" in first

    assert say["menu"] in phone.send(choice)
    assert say["name"] in phone.send("3")
    reprompt = phone.send("A")
    assert reprompt.startswith("CON ") and say["hint"] in reprompt and say["name"] in reprompt
    assert phone.send("Awa") == phone.repeat()  # a repeated request gives the same screen
    phone.send("2")  # woman
    region = phone.send("3")  # 26 to 35
    assert "1 Bamako" in region and say["more"] in region and "Bandiagara" not in region
    page2 = phone.send("98")
    assert "Bandiagara" in page2 and "Bamako" not in page2
    assert "1 Bamako" in phone.send("0")  # back to the first page
    assert say["invalid"] in phone.send("99")
    assert "Bandiagara" in phone.send("98")
    country = phone.send("20")  # Bandiagara, chosen from the second page
    assert "1 " in country and "8 " in country
    since = phone.send("1")  # Libya
    assert "4 " in since
    consent = phone.send("2")
    assert say["consent"] in consent
    done = phone.send("1")
    assert done.startswith("CON ") and say["done"] in done  # and on to the need, in the same call
    assert phone.repeat() == done

    returnee = db.scalar(select(Returnee))
    assert returnee.phone_e164 == "+22370000001"
    assert returnee.phone_hash == phone_hash("+22370000001", PHONE_HASH_KEY)
    assert (returnee.language, returnee.first_name, returnee.sex, returnee.age_group) == (
        lang,
        "Awa",
        "f",
        "26-35",
    )
    assert (returnee.region, returnee.returned_from, returnee.returned_since) == ("bandiagara", "ly", "3-12m")
    assert returnee.is_registered and returnee.consent_version == "consent-v1"
    consent_rows = db.scalars(select(ConsentRecord)).all()
    assert [(c.granted, c.channel, c.version) for c in consent_rows] == [(True, "ussd", "consent-v1")]
    flush_transcripts(database_url)
    session = db.scalar(select(UssdSession))
    assert session.outcome is None and session.phone_hash == returnee.phone_hash  # the call goes on
    steps = db.scalars(
        select(UssdStep).where(UssdStep.session_id == phone.session_id).order_by(UssdStep.seq)
    ).all()
    assert [s.seq for s in steps] == list(range(len(steps))), [(s.seq, s.user_input) for s in steps]
    assert steps[-1].screen == done and all(s.server_ms >= 0 for s in steps)


def register(
    phone: Phone, *, language: str = "1", name: str = "Awa", age: str = "3", consent: str = "1"
) -> str:
    phone.dial()
    for answer in (language, "3", name, "2", age, "1", "1", "1", consent):
        reply = phone.send(answer)
    return reply


def test_language_is_remembered_and_registering_again_updates(phone: Phone, db) -> None:
    register(phone, language="3")
    menu = phone.dial()
    assert menu.startswith("CON ") and "3 Update my details" in menu and "Francais" not in menu
    for answer in ("3", "Moussa", "1", "4", "2", "2", "3", "1"):
        reply = phone.send(answer)
    assert "You are registered" in reply
    returnees = db.scalars(select(Returnee)).all()
    assert len(returnees) == 1
    assert (returnees[0].first_name, returnees[0].age_group, returnees[0].region) == (
        "Moussa",
        "36-50",
        "kayes",
    )
    assert len(db.scalars(select(ConsentRecord)).all()) == 1  # same wording: consent is not asked twice


UPDATE_DETAILS = ("3", "Moussa", "1", "4", "2", "2", "3", "1")  # from the main menu, consent included


def test_a_consent_given_to_new_wording_is_recorded_once(phone: Phone, db) -> None:
    register(phone)
    earlier = datetime(2026, 1, 5, tzinfo=UTC)
    db.execute(update(Returnee).values(consent_version="consent-v0", consent_at=earlier))  # older wording
    db.commit()
    for _ in range(2):  # then the same wording again: nothing more to record
        phone.dial()
        for answer in UPDATE_DETAILS:
            reply = phone.send(answer)
        assert "inscrit" in reply
        db.expire_all()
        returnee = db.scalar(select(Returnee))
        assert returnee.consent_version == "consent-v1" and as_utc(returnee.consent_at) > earlier
        records = db.scalars(select(ConsentRecord).order_by(ConsentRecord.id)).all()
        assert [(r.version, r.granted, r.channel) for r in records] == [("consent-v1", True, "ussd")] * 2
        assert as_utc(records[-1].at) == as_utc(returnee.consent_at) and returnee.first_name == "Moussa"


def test_a_registration_step_is_one_statement_in_autocommit_on_postgresql(
    phone: Phone, db, app: Flask, backend: str
) -> None:
    """Its transaction was four round trips (BEGIN, upsert, the session's row, COMMIT); SQLite,
    which has no data-modifying WITH, keeps the transaction."""
    phone.dial()
    for answer in ("1", "3", "Awa", "2", "3", "1", "1", "1"):
        phone.send(answer)  # up to the consent
    sent: list[tuple[str, bool | None]] = []

    def seen(conn, _cursor, statement, _params, _context, _many) -> None:
        autocommit = getattr(conn.connection.dbapi_connection, "autocommit", None)
        sent.append((statement.split(None, 1)[0].upper(), autocommit if backend == "postgresql" else None))

    engine = sira(app).sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert "inscrit" in phone.send("1")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    if backend == "postgresql":
        assert sent == [("WITH", True)]
    else:
        assert [verb for verb, _ in sent] == ["INSERT", "INSERT", "INSERT"]
    returnee = db.scalar(select(Returnee))
    assert returnee.is_registered and returnee.first_name == "Awa"
    assert db.scalar(select(ConsentRecord.version)) == "consent-v1"
    assert db.scalar(select(UssdSession.phone_hash).where(UssdSession.session_id == phone.session_id))


def test_refusing_consent_keeps_no_registration(phone: Phone, db) -> None:
    reply = register(phone, consent="2")
    assert reply.startswith("END ") and "consentement" not in reply.lower()
    returnee = db.scalar(select(Returnee))
    assert returnee.first_name is None and returnee.phone_e164 is None and not returnee.is_registered


def test_main_menu_from_deep_inside_and_back_through_history(phone: Phone) -> None:
    phone.dial()
    phone.send("1")
    phone.send("3")
    phone.send("Awa")
    assert "Votre age" in phone.send("2")
    home = phone.send("00")
    assert "S'inscrire" in home
    assert "Votre prenom" in phone.send("3")
    assert "S'inscrire" in phone.send("0")


def test_free_text_containing_a_star_is_one_answer(phone: Phone) -> None:
    phone.dial()
    phone.send("1")
    phone.send("3")
    reply = phone.send("Awa*2")
    assert "Lettres seulement" in reply  # "Awa*2" is one (invalid) name, not a name and a choice
    assert "Vous etes" in phone.send("Awa")


def test_dial_through_input_on_the_first_request(phone: Phone, db) -> None:
    reply = phone.dial(dial_through="3")
    assert reply.startswith("CON ") and "Register" in reply
    assert db.scalar(select(Returnee)).language == "en"


def test_cut_off_session_can_be_resumed_on_the_next_dial(phone: Phone, db) -> None:
    phone.dial()
    phone.send("1")
    phone.send("3")
    phone.send("Awa")
    phone.send("2")  # woman; the network drops here
    offer = phone.dial()
    assert offer.startswith("CON ") and "Reprendre" in offer
    resumed = phone.send("1")
    assert "Votre age" in resumed
    for answer in ("2", "1", "1", "1", "1"):
        reply = phone.send(answer)
    assert "Vous etes inscrit" in reply
    assert db.scalar(select(Returnee)).first_name == "Awa"
    assert "Reprendre" not in phone.dial()  # finished sessions are not offered again


def test_declining_to_resume_goes_to_the_main_menu_and_forgets(phone: Phone) -> None:
    phone.dial()
    phone.send("1")
    phone.send("3")
    phone.send("Awa")
    phone.dial()
    assert "S'inscrire" in phone.send("2")
    assert "Reprendre" not in phone.dial()


def test_who_registered_on_the_way_to_help_is_not_asked_to_register_again(phone: Phone, db) -> None:
    phone.dial()
    phone.send("3")  # English
    assert "first name" in phone.send("1")  # Ask for help, not registered yet: register first
    for answer in ("Awa", "2", "3", "1", "1", "1"):
        phone.send(answer)
    assert "What do you need" in phone.send("1")  # consent given: on to the need
    assert "Update my details" in phone.send("00")
    assert "What do you need" in phone.send("1")  # the same session knows they are registered
    assert db.scalar(select(Returnee)).is_registered


def test_useful_numbers_are_one_choice_away_and_lead_back(phone: Phone) -> None:
    phone.dial()
    menu = phone.send("1")  # French
    assert "6 Numeros utiles" in menu, menu
    numbers = phone.send("6")
    assert numbers.startswith("CON ") and all(n in numbers for n in ("SAMU", "15", "17", "18")), numbers
    assert "Choix invalide" in phone.send("1") and "SAMU" in phone.repeat()  # nothing to choose here
    assert "S'inscrire" in phone.send("0")


def test_two_first_registrations_of_one_phone_at_once_record_one_consent(app: Flask, db) -> None:
    """A gateway retry racing the first request: both upsert the returnee, one consent is recorded.
    On PostgreSQL the second statement waits on the row and finds the version already given."""
    hook = sira(app).converse
    registration = SaveRegistration(Profile("Awa", "f", "26-35", "bamako", "ly", "3-12m"), "consent-v1")
    phones = [f"+2237000{n:04d}" for n in range(12)]

    def register_once(number: str, session_id: str, gate: threading.Barrier) -> None:
        digest = phone_hash(number, PHONE_HASH_KEY)
        done = Performed(digest, number, hook.texts, PHONE_HASH_KEY)
        row = {"session_id": session_id, "phone_hash": digest, "service_code": "*384*7472#",
               "network_code": None, "language": "fr", "origin": {"language": "fr", "registered": False},
               "started_at": datetime.now(UTC)}  # fmt: skip
        gate.wait()
        if hook.registers_at_once:
            with hook.autocommit.connect() as connection:
                register_at_once(connection, registration, done, row)
        else:
            with hook.sessions() as session:
                perform(registration, session, done)
                session.commit()

    for number in phones:
        gate = threading.Barrier(2)
        racers = [
            threading.Thread(target=register_once, args=(number, f"race-{number}-{i}", gate)) for i in (1, 2)
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(timeout=30)
    records = db.execute(
        select(Returnee.phone_hash, func.count(ConsentRecord.id))
        .join(ConsentRecord)
        .group_by(Returnee.phone_hash)
    ).all()
    assert sorted(count for _, count in records) == [1] * len(phones)
