"""A provider's focal point answers its referrals from the USSD menu, over every USSD transport.

A returnee asks for a job over USSD (APEJ, Bamako, is alerted); then APEJ's registered number
dials the short code through the `phone` fixture (Africa's Talking's webhook, and the neutral
step an SMPP connector makes), and a real worker sends what its answer queued to the emulator.
"""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from models import Referral
from models.admin import Role
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import (
    RETURNEE,
    inbox,
    referred_for_a_job,
    run_worker,
    seeded_app,
    send_from_phone,
)
from tests.test_admin_providers import NEW, post
from tests.test_admin_referrals import signed_in

APEJ = "+22370000002"  # jobs in Bamako, first choice
ASSOCIATION = "+22350000011"  # jobs in Bamako, second choice
ANPE = "+22370000001"  # a national provider with nothing assigned yet


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.fixture
def referral_code(live_server, gateway: EmulatorProcess, database_url: str) -> str:
    return referred_for_a_job(live_server.url, gateway, database_url)


@pytest.fixture
def focal(phone: Phone) -> Phone:
    """APEJ's focal point's phone, on the transport under test."""
    phone.number = APEJ
    return phone


def referral(db, code: str) -> Referral:
    db.expire_all()
    return db.scalar(select(Referral).where(Referral.code == code))


def test_a_focal_point_accepts_over_ussd_and_the_returnee_gets_the_disclosure_sms(
    db, gateway, database_url, referral_code, focal
) -> None:
    menu = focal.dial()
    assert menu.startswith("CON Sira : vos demandes ouvertes (1)")
    assert f"1 {referral_code} emploi District de Bamako" in menu
    assert "Awa" not in menu and RETURNEE not in menu  # nothing says who, before acceptance
    detail = focal.send("1")
    assert f"Demande {referral_code} (emploi, District de Bamako) : envoyee." in detail
    assert "1 Accepter" in detail and "2 Refuser" in detail and "Cloturer" not in detail
    assert "par SMS" in focal.send("1")
    done = focal.send("1")
    assert (
        done
        == f"END Sira : {referral_code} est a vous. Le prenom et le numero de la personne vous arrivent par SMS."
    )
    run_worker(database_url, gateway)

    current = referral(db, referral_code)
    assert current.status == "accepted"
    assert [(e.to_status, e.channel) for e in current.events][-1] == ("accepted", "ussd")
    [to_provider] = inbox(gateway, APEJ)
    assert "Awa" in to_provider and RETURNEE in to_provider  # the disclosure, by SMS as on OK
    [to_returnee] = inbox(gateway, RETURNEE)
    assert referral_code in to_returnee and "accept" in to_returnee


def test_a_decline_with_a_reason_from_the_list_reroutes_to_the_next_provider(
    db, gateway, database_url, referral_code, focal
) -> None:
    focal.dial()
    focal.send("1")
    reasons = focal.send("2")
    assert f"Pourquoi refusez-vous {referral_code} ?" in reasons and "1 Plus de place" in reasons
    assert focal.send("9").startswith("CON Choix invalide.")  # not on the list: asked again, nothing done
    assert referral(db, referral_code).status == "sent"
    done = focal.send("1")
    assert done.startswith(f"END Sira : {referral_code} refusee.")
    run_worker(database_url, gateway)

    current = referral(db, referral_code)
    assert current.status == "sent" and current.provider.slug != "apej"
    declined = [e for e in current.events if e.to_status == "declined"]
    assert [(e.channel, e.note) for e in declined] == [("ussd", "Plus de place pour l'instant")]
    assert referral_code in inbox(gateway, ASSOCIATION)[0]  # the next provider is alerted
    assert inbox(gateway, RETURNEE) == []


def test_an_accepted_referral_is_closed_as_served_and_the_returnee_is_asked_if_helped(
    db, gateway, database_url, referral_code, focal
) -> None:
    send_from_phone(gateway, APEJ, f"OK {referral_code}")  # accepted by SMS, closed on USSD
    run_worker(database_url, gateway)
    menu = focal.dial()
    assert f"1 {referral_code} emploi District de Bamako acceptee" in menu
    detail = focal.send("1")
    assert "1 Cloturer : personne servie" in detail and "Accepter" not in detail
    assert focal.send("2").startswith(
        f"CON Choix invalide.\nDemande {referral_code}"
    )  # not offered: re-asked
    assert "servie ?" in focal.send("1")
    assert focal.send("1") == f"END Sira : {referral_code} cloturee. Merci."
    run_worker(database_url, gateway)

    assert referral(db, referral_code).status == "closed"
    assert "Repondez 1" in inbox(gateway, RETURNEE)[-1]
    assert "demandes ouvertes (0)" in focal.dial()  # nothing left to answer


def test_the_providers_menu_and_the_returnees_never_cross(db, referral_code, focal, live_server) -> None:
    returnee = Phone(live_server.url, number=RETURNEE)
    menu = returnee.dial()
    assert "Demander de l'aide" in menu and "demandes ouvertes" not in menu
    assert "demandes ouvertes" not in returnee.send("00")

    assert "demandes ouvertes (1)" in focal.dial()
    focal.send("1")
    home = focal.send("00")  # the main menu of a provider's number is its own
    assert home.startswith("CON Sira : vos demandes ouvertes (1)") and "Demander" not in home
    focal.number = ANPE  # a provider's number with nothing assigned: still not the returnees' menu
    empty = focal.dial()
    assert empty.startswith("CON Sira : vos demandes ouvertes (0)") and "Demander" not in empty
    assert "Choisissez votre langue" not in empty


def test_an_answer_to_a_referral_that_moved_since_the_menu_changes_nothing_and_says_why(
    db, gateway, database_url, referral_code, focal
) -> None:
    focal.dial()
    focal.send("1")
    assert "par SMS" in focal.send("1")  # the accept question is on the screen...
    send_from_phone(gateway, APEJ, f"OK {referral_code}")  # ...when the same number accepts by SMS
    run_worker(database_url, gateway)
    events = len(referral(db, referral_code).events)
    done = focal.send("1")
    assert done == f"END Sira : la demande {referral_code} est acceptee ; rien n'a change."
    run_worker(database_url, gateway)
    assert len(referral(db, referral_code).events) == events
    assert len([m for m in inbox(gateway, APEJ) if "Awa" in m]) == 1  # disclosed once, not twice

    focal.dial()
    focal.send("1")
    focal.send("1")  # close as served...
    db.execute(Referral.__table__.update().where(Referral.code == referral_code).values(provider_id=None))
    db.commit()  # ...while a coordinator takes the referral back to the desk
    assert focal.send("1") == f"END Sira : la demande {referral_code} ne vous est pas confiee."
    assert referral(db, referral_code).status == "accepted"


def test_a_number_made_a_providers_gets_the_providers_menu_on_its_next_dial(app, db, phone) -> None:
    """The returnee profile cached by its earlier dials is forgotten when the admin saves the number."""
    phone.number = "+22370000091"
    phone.dial()
    phone.send("1")  # French
    assert "Demander de l'aide" in phone.dial()  # its profile is now cached with the session
    client = signed_in(app, db, Role.COORDINATOR)
    assert post(client, "/admin/providers/new", NEW).status_code == 302
    menu = phone.dial()
    assert menu.startswith("CON Sira: i ka demenyini minnu ma laban (0)") and "Demander" not in menu
