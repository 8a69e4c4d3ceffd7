"""The admin's USSD simulator over the other transport: SMPP, through the operator gateway
emulator's phones (real HTTP), the emulator's gateway (real TCP) and the connector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from models.admin import AuditEntry
from models.phone import phone_hash
from tests.conftest import PHONE_HASH_KEY, app_settings
from tests.test_admin_simulator import PRODUCTION, act, hidden, staff
from tests.test_smpp_emulator_app import bound_phones


@pytest.fixture
def phones_url(redis: Redis) -> Iterator[str]:
    with bound_phones(redis) as (url, _):
        yield url


def test_staff_choose_smpp_and_the_simulator_dials_through_the_gateway_emulator(
    database_url: str, redis: Redis, db: Session, phones_url: str
) -> None:
    client = staff(create_app(app_settings(database_url, smpp_emulator_url=phones_url)), db)
    page = client.get("/admin/simulator")
    assert "opérateur (SMPP)" in page.text
    page = act(client, {"phone": "70 00 99 01"}, "dial", transport="smpp", input="2")
    assert page.status_code == 200 and "step 1: 2" in page.text  # the dial-through's answer
    state = hidden(page.text)
    assert state["transport"] == "smpp" and state["session_id"].startswith("smpp_sim")
    page = act(client, {**state, "phone": "+22370009901"}, "send", transport="smpp", input="bye")
    assert "step 2: bye" in page.text and hidden(page.text)["session_id"] == ""
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "simulator.dial"))
    assert entry.detail["phone_hash"] == phone_hash("+22370009901", PHONE_HASH_KEY)
    assert entry.detail["transport"] == "smpp" and entry.object_id == state["session_id"]


def test_with_the_smpp_emulator_down_the_simulator_says_so_instead_of_failing(
    database_url: str, redis: Redis, db: Session
) -> None:
    client = staff(create_app(app_settings(database_url, smpp_emulator_url="http://127.0.0.1:1")), db)
    page = act(client, {"phone": "+22370009901"}, "dial", transport="smpp")
    assert page.status_code == 200 and "émulateur de passerelle SMPP ne répond pas" in page.text
    assert hidden(page.text)["session_id"] == ""


def test_in_production_smpp_is_offered_only_with_a_local_gateway_emulator(
    database_url: str, redis: Redis, db: Session
) -> None:
    remote = create_app(
        app_settings(
            database_url,
            **PRODUCTION,
            at_api_url="http://127.0.0.1:1",
            smpp_emulator_url="https://ussd.example.org",
        )
    )
    client = staff(remote, db)
    assert "SMPP" not in client.get("/admin/simulator").text
    page = act(client, {"phone": "+22370009901"}, "dial", transport="smpp")
    assert "1 Francais" in page.text and hidden(page.text)["session_id"].startswith(
        "ATUid_sim"
    )  # AT's webhook
