"""A finished session is never offered for resume (issue #14), whatever the gateway does after its END.

Resume exists for a call cut off in the middle of a journey. A session that reached its END (a
request sent, consent refused) has nothing to resume: the next dial shows the main menu. Each
path a gateway may take after an END is walked here, over Africa's Talking's webhook and over a
transport that sends only the newest input (SMPP), against real Redis and a real database.
"""

from __future__ import annotations

import pytest
from flask import Flask

from gateway.ussd import UssdStep
from infra import keys
from tests.conftest import LiveServer, NeutralPhone, Phone, flush_transcripts
from tests.gateway_helpers import EmulatorProcess, fresh_number
from tests.journeys import app_with_directory, ask_for_help, code_in, seeded_app, settings_for
from tests.test_registration_ussd import register

OFFERS = ("Reprendre votre inscription ?", "Reprendre votre demande d'aide ?")
MENU = "Demander de l'aide"


@pytest.fixture
def app(database_url: str, redis, gateway: EmulatorProcess) -> Flask:
    """The sample directory is loaded: a request sent goes to a provider."""
    return seeded_app(database_url, gateway)


@pytest.fixture
def phone(transport: str, live_server: LiveServer, app: Flask) -> Phone:
    """A returnee's number (the sample directory's providers dial into their own menu)."""
    number = fresh_number()
    return Phone(live_server.url, number) if transport == "at" else NeutralPhone(app, number)


def assert_no_offer(screen: str) -> None:
    assert screen.startswith("CON ") and MENU in screen, screen
    assert not any(offer in screen for offer in OFFERS), screen


def cut_at_confirmation(phone: Phone) -> str:
    """A registered phone asks for a job and the call drops at "Send?": a journey worth resuming."""
    phone.dial()
    phone.send("1")  # Ask for help
    screen = phone.send("1")  # jobs: "... Envoyer ?"
    assert "Envoyer ?" in screen, screen
    return screen


def late(phone: Phone, answers: list[str]) -> str:
    """A request of the phone's current session that the gateway delivers late (a retry held up
    in the network): the history `answers`, as the transport would have sent it then."""
    if isinstance(phone, NeutralPhone):
        step = UssdStep(phone.session_id, phone.number, phone.service_code, answers[-1] if answers else "",
                        cumulative=False, network="61001", transport="smpp", dialled=not answers,
                        step_id=str(phone.sent - 1))  # fmt: skip
        reply = phone.converse(step)
        return ("END " if reply.end else "CON ") + reply.text
    saved, phone.history = phone.history, list(answers)
    try:
        return phone.repeat()
    finally:
        phone.history = saved


def test_a_request_sent_is_not_offered_on_the_next_dial(phone: Phone) -> None:
    sent = ask_for_help(phone)
    assert sent.startswith("END ") and code_in(sent)
    assert_no_offer(phone.dial())


def test_a_refusal_of_consent_is_not_offered_on_the_next_dial(phone: Phone) -> None:
    refused = register(phone, consent="2")
    assert refused.startswith("END "), refused
    menu = phone.dial()
    assert menu.startswith("CON ") and not any(offer in menu for offer in OFFERS), menu


def test_a_resumed_request_once_sent_is_not_offered_again(phone: Phone) -> None:
    register(phone)
    cut_at_confirmation(phone)
    offer = phone.dial()
    assert OFFERS[1] in offer, offer
    assert "Envoyer ?" in phone.send("1")
    assert phone.send("1").startswith("END ")
    assert_no_offer(phone.dial())


def test_the_last_request_retried_after_the_end_is_not_offered(phone: Phone) -> None:
    register(phone)
    cut_at_confirmation(phone)
    phone.dial()
    phone.send("2")  # not resumed: the main menu
    phone.send("1")
    phone.send("1")
    sent = phone.send("1")
    assert sent.startswith("END ") and code_in(sent)
    assert phone.repeat() == sent  # the gateway did not see our answer and sends it again
    assert_no_offer(phone.dial())


def test_an_earlier_request_delivered_after_the_end_neither_reopens_the_session_nor_is_offered(
    phone: Phone,
) -> None:
    register(phone)
    phone.dial()
    phone.send("1")
    confirmation = phone.send("1")
    sent = phone.send("1")
    assert sent.startswith("END ") and "Envoyer ?" in confirmation
    answered = late(phone, phone.history[:-1])  # the request that showed "Send?", come back late
    assert answered == sent, answered  # the session is over: its END again, nothing reopened
    assert_no_offer(phone.dial())


@pytest.mark.parametrize("transport", ["at"])
def test_a_dial_on_the_session_id_of_a_finished_session_is_not_offered(phone: Phone) -> None:
    """The operator reuses a finished session's id for the next dial: a new session, no offer."""
    register(phone)
    cut_at_confirmation(phone)  # a suspended copy exists: the reused id must not resurrect it either
    phone.dial()
    phone.send("2")
    phone.send("1")
    phone.send("1")
    assert phone.send("1").startswith("END ")
    phone.history = []  # same sessionId, a new dial
    assert_no_offer(phone.repeat())
    phone.history = ["1"]  # Ask for help, then the call drops: a list, nothing to resume
    phone.repeat()
    assert_no_offer(phone.dial())


def test_a_session_finished_through_one_web_process_is_not_offered_by_another(
    app: Flask, database_url: str, gateway: EmulatorProcess
) -> None:
    """Two web processes (each with its memory of the states it saved) behind one gateway."""
    other = seeded_app(database_url, gateway)
    with LiveServer(app) as first, LiveServer(other) as second:
        phone = Phone(first.url, fresh_number())
        register(phone)
        cut_at_confirmation(phone)  # through the first: it remembers the session at "Send?"
        phone.dial()
        phone.send("1")
        phone.base_url = second.url
        assert phone.send("1").startswith("END ")  # the second ends it
        phone.base_url = first.url
        late(phone, phone.history[:-1])  # the first hears "Send?" again, late
        assert_no_offer(phone.dial())
        phone.base_url = second.url
        assert_no_offer(phone.dial())


def test_an_earlier_request_delivered_after_the_finished_state_expired_is_not_offered(
    database_url: str, redis, gateway: EmulatorProcess
) -> None:
    """The state of a finished call has expired from Redis (its TTL) when a late request of it
    comes, to another web process: it is rebuilt from the gateway's `text` (only a transport that
    sends the history can), but never offered."""
    settings = settings_for(database_url, gateway)
    first, second = app_with_directory(settings), app_with_directory(settings)
    with LiveServer(first) as one, LiveServer(second) as other:
        phone = Phone(one.url, fresh_number())
        register(phone)
        phone.dial()
        phone.send("1")
        phone.send("1")
        assert phone.send("1").startswith("END ")
        flush_transcripts(database_url)  # the worker's cron does it every 5 s
        # its TTL runs out: what Redis does then, done now (the app cannot tell the two apart)
        assert redis.delete(keys.ussd_session(phone.session_id)) == 1
        phone.base_url = other.url  # a process that never saw the call: nothing remembered
        late(phone, phone.history[:-1])
        assert_no_offer(phone.dial())
