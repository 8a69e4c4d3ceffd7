"""Assisted registration: a reception agent registers a returnee on the admin's phone-sized page.

Real database, real Redis, the real USSD transports for the person's dial afterwards.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flows.journeys.registration import CONSENT_TEXT
from models import ConsentRecord, Returnee
from models.admin import AuditEntry, Role, User
from models.base import utcnow
from models.messaging import OutboundSms
from models.phone import phone_hash
from models.referral import Referral, ReferralEvent
from tests.conftest import PHONE_HASH_KEY, Phone
from tests.test_admin_access import login, make_user, token
from web.context import sira

NUMBER = "+22370000109"  # not a number of the sample directory (a provider's number gets the focal menu)
FORM = {
    "phone": "70 00 01 09", "language": "en", "first_name": "awa", "sex": "f", "age_group": "26-35",
    "region": "kayes", "returned_from": "ly", "returned_since": "lt3m", "category": "jobs", "consent": "1",
}  # fmt: skip


@pytest.fixture
def agent(app: Flask, db: Session) -> tuple[FlaskClient, User]:
    assert app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    user = make_user(db, "agent@example.org", Role.AGENT)
    return login(app.test_client(), "agent@example.org"), user


def register(client: FlaskClient, **changes: str):
    return client.post(
        "/admin/register", data={**FORM, **changes, "csrf_token": token(client, "/admin/register")}
    )


def counts(db: Session) -> tuple[int, ...]:
    db.expire_all()
    return tuple(
        db.scalar(select(func.count()).select_from(model))
        for model in (Returnee, ConsentRecord, OutboundSms, Referral, AuditEntry)
    )


def test_an_agent_starts_on_the_form_and_sees_no_other_page(agent) -> None:
    client, _user = agent
    assert client.get("/admin/").headers["Location"].endswith("/admin/register")
    for path in (
        "/admin/dashboard",
        "/admin/referrals",
        "/admin/returnees",
        "/admin/providers",
        "/admin/sms",
    ):
        assert client.get(path).status_code == 403, path
    page = client.get("/admin/register").text
    assert "Inscrire une personne de retour" in page and "/admin/referrals" not in page


def test_the_consent_is_shown_in_the_persons_language(agent, app: Flask) -> None:
    client, _user = agent
    catalogs = sira(app).sms_texts.catalogs
    for lang in ("fr", "bm", "en"):
        page = client.get(f"/admin/register?lang={lang}").text
        consent = re.search(r'<blockquote lang="(\w+)" id="consent">([^<]*)</blockquote>', page)
        assert consent.group(1) == lang
        assert consent.group(2).replace("&#39;", "'") == catalogs.gettext(lang, CONSENT_TEXT)
    assert catalogs.gettext("bm", CONSENT_TEXT) != catalogs.gettext("fr", CONSENT_TEXT)


def test_an_agent_registers_a_person_with_a_first_request_who_then_dials_without_registering_again(
    agent, db: Session, phone: Phone
) -> None:
    client, user = agent
    response = register(client)
    assert response.status_code == 302
    notice = client.get(response.headers["Location"]).text
    assert "Inscription faite" in notice

    returnee = db.scalar(select(Returnee).where(Returnee.phone_hash == phone_hash(NUMBER, PHONE_HASH_KEY)))
    assert (returnee.first_name, returnee.language, returnee.region, returnee.is_registered) == (
        "Awa", "en", "kayes", True
    )  # fmt: skip
    consent = db.scalar(select(ConsentRecord))
    assert (consent.channel, consent.agent_id, consent.granted) == ("agent", user.id, True)
    welcome = db.scalar(select(OutboundSms).where(OutboundSms.purpose == "welcome"))
    assert welcome.to_e164 == NUMBER and "*384*7472#" in welcome.body and "STATUT" in welcome.body
    assert "Welcome to Sira" in welcome.body  # in the person's language
    referral = db.scalar(select(Referral))
    assert referral.requested_category == "jobs" and referral.code in notice
    assert db.scalar(select(ReferralEvent.channel).where(ReferralEvent.to_status == "new")) == "agent"
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "returnee.register"))
    assert (
        entry.user_id == user.id and entry.detail["channel"] == "agent" and entry.detail["already"] is False
    )

    phone.number = NUMBER
    menu = phone.dial()
    assert "Ask for help" in menu and "Choose your language" not in menu
    need = phone.send("1")
    assert "What do you need" in need and "first name" not in need


def test_a_number_already_registered_is_found_and_nothing_is_duplicated(agent, db: Session) -> None:
    client, _user = agent
    assert register(client).status_code == 302
    before = counts(db)

    again = register(client, phone="+223 70000109", first_name="Other", category="")

    assert again.status_code == 302 and "done=already" in again.headers["Location"]
    assert "déjà inscrit" in client.get(again.headers["Location"]).text
    returnees, consents, sms, referrals, audits = counts(db)
    assert (returnees, consents, sms, referrals) == before[:4]
    assert audits == before[4] + 1  # the look-up itself is audited
    assert db.scalar(select(Returnee.first_name)) == "Awa"


@pytest.mark.parametrize(
    ("changes", "field_message"),
    [
        ({"consent": ""}, "sans l&#39;accord de la personne"),
        ({"phone": "12"}, "numéro de téléphone n&#39;est pas valide"),
        ({"first_name": "A1"}, "des lettres seulement"),
        ({"region": "paris"}, "Choisissez-en un"),
        ({"category": "child_protection"}, "Choisissez-en un"),
        ({"language": "de"}, "Choisissez la langue"),
        ({"sex": ""}, "Choisissez-en un"),
        ({"returned_since": "yesterday"}, "Choisissez-en un"),
    ],
)
def test_a_bad_form_is_shown_again_with_its_reason_and_writes_nothing(
    agent, db: Session, changes: dict[str, str], field_message: str
) -> None:
    client, _user = agent
    before = counts(db)
    response = register(client, **changes)
    assert response.status_code == 400
    assert field_message in response.text and "Rien n&#39;a été enregistré" in response.text
    assert counts(db) == before


def test_staff_may_register_but_viewers_and_providers_may_not(app: Flask, db: Session) -> None:
    make_user(db, "coord@example.org", Role.COORDINATOR)
    make_user(db, "viewer@example.org", Role.VIEWER)
    assert login(app.test_client(), "coord@example.org").get("/admin/register").status_code == 200
    assert login(app.test_client(), "viewer@example.org").get("/admin/register").status_code == 403


def test_a_person_who_sent_stop_before_gets_no_welcome_sms(agent, db: Session) -> None:
    client, _user = agent
    db.add(Returnee(phone_hash=phone_hash(NUMBER, PHONE_HASH_KEY), language="fr", opted_out_at=utcnow()))
    db.commit()

    assert register(client, category="").status_code == 302

    db.expire_all()
    assert db.scalar(select(Returnee.registered_at)) is not None
    assert db.scalar(select(func.count()).select_from(OutboundSms)) == 0


def test_a_number_known_but_not_registered_is_registered_and_its_first_request_made(
    agent, db: Session
) -> None:
    """A person who once chose a language on USSD, then left: the same row, now registered."""
    client, _user = agent
    db.add(Returnee(phone_hash=phone_hash(NUMBER, PHONE_HASH_KEY), language="bm"))
    db.commit()

    assert register(client).status_code == 302

    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Returnee)) == 1
    assert db.scalar(select(Returnee.language)) == "en"
    assert db.scalar(select(Referral.requested_category)) == "jobs"


@pytest.mark.parametrize("lang", ["fr", "bm", "en"])
def test_the_welcome_sms_fits_one_segment_and_names_no_need(lang: str) -> None:
    from flows.i18n import Catalogs
    from flows.sms import R_WELCOME, SmsTexts
    from gateway.segments import is_gsm7, segment_count

    body = SmsTexts(Catalogs.load(), "SIRA", "INFO", "*384*7472#", 15).to_returnee(lang, R_WELCOME).body
    assert is_gsm7(body) and segment_count(body) == 1 and "*384*7472#" in body
    assert "STATUT" in body and "STOP" in body and "AIDE" in body
    assert not any(word in body.lower() for word in ("migrant", "retour", "sante", "health"))
