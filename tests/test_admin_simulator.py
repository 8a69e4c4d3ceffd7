"""The USSD simulator page: it drives the real webhook (behind the callback secret), keeps its
state in the form, shows the emulator's inbox, and is off in production with a real gateway."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from models.admin import AuditEntry, Role
from models.directory import Provider
from models.phone import phone_hash
from models.referral import Referral, Status
from models.ussd import UssdSession
from tests.conftest import PHONE_HASH_KEY, app_settings
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import seeded_app
from tests.test_admin_access import login, make_user, token
from tests.test_admin_referrals import referral_for

SECRET = "s" * 40
PRODUCTION = {
    "env": "production",
    "secret_key": "k" * 40,
    "callback_secret": SECRET,
    "raise_step_errors": False,
}


def hidden(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))


def staff(app: Flask, db: Session) -> FlaskClient:
    app.config["ADMIN_COOKIE_SECURE"] = False
    make_user(db, "coordinator@example.org", Role.COORDINATOR)
    return login(app.test_client(), "coordinator@example.org")


def act(client: FlaskClient, state: dict[str, str], action: str, **fields: str):
    data = {k: state.get(k, "") for k in ("phone", "session_id", "text", "steps", "screen")}
    return client.post(
        "/admin/simulator", data={**data, **fields, "action": action, "csrf_token": token(client)}
    )


def test_in_production_the_simulator_is_off_unless_sms_go_to_the_local_emulator(
    database_url: str, redis: Redis, db: Session
) -> None:
    real_gateway = create_app(app_settings(database_url, **PRODUCTION, at_api_url="https://api.example.org"))
    client = staff(real_gateway, db)
    page = client.get("/admin/simulator")
    assert page.status_code == 403 and "désactivé en production" in page.text
    assert act(client, {"phone": "+22370009901"}, "dial").status_code == 403
    assert db.scalar(select(UssdSession)) is None


def test_a_dial_goes_through_the_real_webhook_behind_the_secret_which_the_page_never_shows(
    database_url: str, redis: Redis, db: Session
) -> None:
    emulated = create_app(app_settings(database_url, **PRODUCTION, at_api_url="http://127.0.0.1:1"))
    client = staff(emulated, db)
    page = act(client, {"phone": "70 00 99 01"}, "dial")
    assert page.status_code == 200 and "1 Francais" in page.text and SECRET not in page.text
    state = hidden(page.text)
    assert state["session_id"].startswith("ATUid_sim") and state["steps"] == "0"
    page = act(client, {**state, "phone": "+22370009901"}, "send", input="1")
    assert hidden(page.text)["text"] == "1" and hidden(page.text)["steps"] == "1"
    assert "émulateur de passerelle ne répond pas" in page.text  # no emulator on port 1: said, not a 500
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "simulator.dial"))
    assert entry.object_id == state["session_id"]
    assert entry.detail["phone_hash"] == phone_hash("+22370009901", PHONE_HASH_KEY)  # who was played
    assert "70009901" not in str(entry.detail)


def test_hanging_up_sends_the_end_of_session_notice(app: Flask, db: Session) -> None:
    client = staff(app, db)
    state = hidden(act(client, {"phone": "+22370009901"}, "dial").text)
    page = act(client, {**state, "phone": "+22370009901"}, "hangup")
    assert "Appel terminé." in page.text and hidden(page.text)["session_id"] == ""
    found = db.scalar(select(UssdSession).where(UssdSession.session_id == state["session_id"]))
    assert found.end_status == "Incomplete"


def test_a_bad_number_is_refused_with_a_message_and_calls_nothing(app: Flask, db: Session) -> None:
    client = staff(app, db)
    page = act(client, {"phone": "12"}, "dial")
    assert page.status_code == 400 and "pas un numéro de téléphone" in page.text
    assert db.scalar(select(UssdSession)) is None
    assert "ne répond pas" not in page.text  # no inbox was asked for a number that is none


def test_the_phone_starts_without_a_number_and_dialling_none_is_refused(app: Flask, db: Session) -> None:
    client = staff(app, db)
    empty = client.get("/admin/simulator")
    assert empty.status_code == 200 and hidden(empty.text).get("phone", "") == ""
    assert "SMS reçus par" not in empty.text  # no inbox to show before a number is typed
    page = act(client, {}, "dial")
    assert page.status_code == 400 and "pas un numéro de téléphone" in page.text
    assert db.scalar(select(UssdSession)) is None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.PROVIDER])
def test_only_staff_may_use_the_simulator(app: Flask, db: Session, role: Role) -> None:
    app.test_cli_runner().invoke(args=["seed"])
    first = db.scalar(select(Provider.id).limit(1))
    make_user(db, "someone@example.org", role, first if role == Role.PROVIDER else None)
    client = login(app.test_client(), "someone@example.org")
    assert client.get("/admin/simulator").status_code == 403


def test_a_provider_replies_ok_from_the_simulated_phone(
    database_url: str, redis: Redis, gateway: EmulatorProcess, app_port: int, db: Session
) -> None:
    from tests.conftest import LiveServer

    app = seeded_app(database_url, gateway)
    referral = referral_for(app, db)
    apej_phone = "+22370000002"
    client = staff(app, db)
    with LiveServer(app, app_port):  # the emulator posts the SMS to the app over HTTP
        page = act(client, {"phone": apej_phone}, "sms", sms=f"OK {referral.code}")
    assert "Réponse du service" in page.text and "ok: accept" in page.text
    db.expire_all()
    assert db.get(Referral, referral.id).status == Status.ACCEPTED


def test_the_simulator_plays_only_the_reserved_test_numbers(app: Flask, db: Session) -> None:
    """Staff cannot act as a real returnee's or provider's phone: only SIMULATOR_PHONE_PREFIXES."""
    client = staff(app, db)
    for action, extra in (("dial", {}), ("sms", {"sms": "STOP"})):
        page = act(client, {"phone": "+22376123456"}, action, **extra)
        assert page.status_code == 400 and "numéros de test réservés" in page.text and "+2237000" in page.text
    assert db.scalar(select(UssdSession)) is None
    assert db.scalar(select(AuditEntry).where(AuditEntry.action.like("simulator.%"))) is None
    assert act(client, {"phone": "+22370009901"}, "dial").status_code == 200  # inside the range
