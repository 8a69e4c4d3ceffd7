"""The erasure PIN: six digits, three wrong tries and it is dead, a life of minutes, all audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select, update

from models import Returnee
from models.admin import AuditEntry
from models.base import utcnow
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import ask_for_help, inbox, run_worker, seeded_app, send_from_phone

RETURNEE = "+22370000199"


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.fixture
def registered(live_server) -> None:
    """The returnee registered (and asked for help) by USSD: Sira holds their data."""
    ask_for_help(Phone(live_server.url, number=RETURNEE))


def sms(gateway: EmulatorProcess, database_url: str, text: str) -> str:
    send_from_phone(gateway, RETURNEE, text)
    run_worker(database_url, gateway)
    return inbox(gateway, RETURNEE)[-1]


def ask_pin(gateway: EmulatorProcess, database_url: str) -> str:
    told = sms(gateway, database_url, "SUPPRIMER")
    assert "15 minutes" in told, told
    return next(word for word in told.split() if word.isdigit() and len(word) >= 4)


def actions(db) -> list[str]:
    return list(
        db.scalars(select(AuditEntry.action).where(AuditEntry.action.like("erase.%")).order_by(AuditEntry.id))
    )


@pytest.mark.usefixtures("registered")
def test_the_pin_has_six_digits_and_erases_once_sent_back(db, gateway, database_url) -> None:
    pin = ask_pin(gateway, database_url)
    assert len(pin) == 6
    assert "effacees" in sms(gateway, database_url, f"SUPPRIMER {pin}").replace("é", "e")
    db.expire_all()
    assert db.scalar(select(Returnee)) is None
    assert actions(db) == ["erase.pin_sent", "erase.done"]


@pytest.mark.usefixtures("registered")
def test_three_wrong_pins_kill_it_even_the_right_one_then_fails(db, gateway, database_url) -> None:
    pin = ask_pin(gateway, database_url)
    wrong = f"{(int(pin) + 1) % 10**6:06d}"
    for _ in range(3):
        assert "faux" in sms(gateway, database_url, f"SUPPRIMER {wrong}")
    assert "faux" in sms(gateway, database_url, f"SUPPRIMER {pin}")
    db.expire_all()
    assert db.scalar(select(Returnee)) is not None
    assert actions(db) == ["erase.pin_sent"] + ["erase.pin_wrong"] * 4
    killed = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "erase.pin_wrong").order_by(AuditEntry.id)
    )
    assert [entry.detail["pin_killed"] for entry in killed] == [False, False, True, True]


@pytest.mark.usefixtures("registered")
def test_the_pin_lives_minutes_not_a_day(db, gateway, database_url) -> None:
    pin = ask_pin(gateway, database_url)
    db.execute(update(Returnee).values(erase_requested_at=utcnow() - timedelta(minutes=16)))
    db.commit()
    assert "faux" in sms(gateway, database_url, f"SUPPRIMER {pin}")
    db.expire_all()
    assert db.scalar(select(Returnee)) is not None
