"""A reception agent registers a returnee from a phone-sized browser; the person then dials in.

The form is filled as an agent would on a phone, the welcome SMS reaches the gateway emulator
through the outbox and a real worker, and the person's dial goes straight to the menu.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from models.admin import Role
from tests.browser.conftest import sign_in
from tests.conftest import Phone
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, messages, run_worker

PHONE_SIZED = {"width": 360, "height": 740}


def test_an_agent_registers_a_person_on_a_phone_and_the_person_dials_without_registering_again(
    browser, live_server, db: Session, database_url: str, gateway: EmulatorProcess
) -> None:
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport=PHONE_SIZED, is_mobile=True, has_touch=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_in(page, db, Role.AGENT)
    assert page.url.endswith("/admin/register")
    page.get_by_role("link", name="Bamanankan").click()
    consent = page.locator("#consent")
    assert consent.get_attribute("lang") == "bm" and consent.inner_text().strip()

    page.get_by_label("Numéro de téléphone").fill(RETURNEE)
    page.get_by_label("Prénom").fill("Awa")
    page.get_by_label("Sexe").select_option("f")
    page.get_by_label("Âge").select_option("26-35")
    page.get_by_label("Région où elle vit").select_option("bamako")
    page.get_by_label("Pays d'où la personne revient").select_option("ly")
    page.get_by_label("De retour depuis").select_option("lt3m")
    page.get_by_label("Une première demande (facultatif)").select_option("jobs")
    page.get_by_label("La personne l'a entendu et est d'accord").check()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
    page.get_by_role("button", name="Inscrire", exact=True).click()

    notice = page.get_by_role("status").inner_text()
    assert "Inscription faite" in notice and "Code de la demande" in notice
    run_worker(database_url, gateway)
    welcome = [m for m in messages(gateway) if m["to"] == RETURNEE and "*384*7472#" in m["text"]]
    assert welcome and "STATUT" in welcome[0]["text"]

    phone = Phone(live_server.url, number=RETURNEE)
    menu = phone.dial()
    assert "N ka togoseben yelema" in menu and "1 Francais" not in menu  # straight to the bm menu, registered
    need = phone.send("1")
    assert "togo ye di" not in need.lower()  # not asked for a first name again
    context.close()
