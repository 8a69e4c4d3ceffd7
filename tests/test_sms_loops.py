"""No SMS loops: a phone that answers every SMS automatically gets a few answers, then silence.

A focal point's phone with an out-of-office auto-reply answers our help message, which answered
its auto-reply, and so on for ever. Every number, a provider's included, gets at most
`SMS_REPLY_LIMIT` answers a window; what comes after is stored, acted on if it is a command,
not answered, and a coordinator sees it flagged in the SMS log and the audit log.
"""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from models import InboundSms
from models.admin import AuditEntry, Role
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import ask_for_help, code_in, inbox, run_worker, seeded_app, send_from_phone
from tests.test_admin_referrals import signed_in

APEJ = "+22370000002"  # a provider's registered number in the sample directory
RETURNEE = "+22370000177"
AUTO_REPLY = "Je suis absente jusqu'au 12. Pour une urgence appelez le standard."
LIMIT = 5


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


def auto_responder(gateway: EmulatorProcess, database_url: str, number: str, rounds: int = 30) -> int:
    """The phone answers each SMS it gets with its auto-reply; how many SMS it got in the end."""
    send_from_phone(gateway, number, AUTO_REPLY)
    run_worker(database_url, gateway)
    seen = 0
    for _ in range(rounds):
        received = len(inbox(gateway, number))
        if received == seen:
            return seen  # we stopped answering: the loop is over
        seen = received
        send_from_phone(gateway, number, AUTO_REPLY)
        run_worker(database_url, gateway)
    raise AssertionError(f"still answering after {rounds} rounds: an endless loop")


@pytest.mark.usefixtures("live_server")
def test_a_providers_auto_responder_gets_a_few_answers_then_is_flagged(
    app: Flask, db, gateway: EmulatorProcess, database_url: str
) -> None:
    assert auto_responder(gateway, database_url, APEJ) == LIMIT
    db.expire_all()
    outcomes = [row.handled_as for row in db.scalars(select(InboundSms).order_by(InboundSms.id))]
    assert outcomes == ["provider_help"] * LIMIT + ["reply_limited"]
    [flag] = db.scalars(select(AuditEntry).where(AuditEntry.action == "sms.replies_stopped")).all()
    assert flag.detail["sender"] == "provider"
    page = signed_in(app, db, Role.COORDINATOR).get("/admin/sms?direction=in")
    assert page.status_code == 200 and "reply_limited" in page.text


@pytest.mark.usefixtures("live_server")
def test_past_its_answers_a_provider_still_acts_on_its_referrals(
    app: Flask, db, gateway: EmulatorProcess, database_url: str, live_server
) -> None:
    code = code_in(ask_for_help(Phone(live_server.url, number=RETURNEE)))
    run_worker(database_url, gateway)
    gateway.post("/reset")
    for _ in range(LIMIT + 1):
        send_from_phone(gateway, APEJ, AUTO_REPLY)
    send_from_phone(gateway, APEJ, f"OK {code}")  # the focal point is back and accepts
    run_worker(database_url, gateway)
    db.expire_all()
    last = db.scalar(select(InboundSms).order_by(InboundSms.id.desc()))
    assert last.handled_as == "accept"
    assert any(code in text for text in inbox(gateway, RETURNEE))  # the returnee is told
    assert len(inbox(gateway, APEJ)) == LIMIT + 1  # five answers, and the confirmation of its OK


@pytest.mark.usefixtures("live_server")
def test_a_returnees_auto_responder_is_held_to_the_same_limit(
    app: Flask, db, gateway: EmulatorProcess, database_url: str
) -> None:
    assert auto_responder(gateway, database_url, RETURNEE) == LIMIT
