"""Every form a coordinator, an administrator or a reception agent fills works with the keyboard
alone: Tab and Shift+Tab to move, letters to type and to pick an option, Space to tick, Enter to
send. No click, no `fill`. Each control the focus lands on shows it (an outline), as a person
who does not use a mouse needs to see where they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import Role, User
from models.directory import Provider
from models.phone import phone_hash
from models.referral import Flag, Referral, ReferralEvent, Status
from models.returnee import Returnee
from tests.browser.admin_pages import sign_in_as
from tests.conftest import PHONE_HASH_KEY
from tests.test_admin_access import PASSWORD, make_user
from tests.test_admin_referrals import provider, referral_for

# What has the focus, and whether a reader can see it: an outline at least 2 px wide (WCAG 2.4.13's
# focus appearance; the browser's own ring is 1 px, thin and dark on the header's dark blue).
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const ring = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  return {tag: el.tagName.toLowerCase(), name: el.name || '', type: el.type || '', value: el.value || '',
          text: (el.innerText || '').trim(), checked: !!el.checked, ring: ring,
          form: el.form ? el.form.getAttribute('action') : '',
          where: el.outerHTML.slice(0, 120)};
}"""
STEPS = 120  # more Tab presses than any admin page has controls


@pytest.fixture
def flagged_code(app: Flask, db: Session) -> str:
    """Awa (+22370000101) asked for a job in Bamako: sent to APEJ, which let the deadline pass
    once (flagged); an administrator and a coordinator have accounts."""
    referral = referral_for(app, db)
    referral.flag(Flag.NO_ANSWER)
    make_user(db, "admin@example.org", Role.ADMIN)
    make_user(db, "coordinator@example.org", Role.COORDINATOR)
    db.commit()
    return referral.code


def tab_to(page, wanted: Callable[[dict], bool], backwards: bool = False) -> dict:
    """Press Tab (or Shift+Tab) until the focus is on what is wanted; every stop must show its focus."""
    for _ in range(STEPS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        focused = page.evaluate(FOCUSED)
        if focused["tag"] != "body":
            assert focused["ring"], f"the focus is not visible on {focused['where']}"
        if wanted(focused):
            return focused
    raise AssertionError("Tab never reached the control")


def field(page, name: str, backwards: bool = False) -> dict:
    return tab_to(page, lambda f: f["name"] == name, backwards)


def button(page, text: str) -> dict:
    return tab_to(page, lambda f: f["tag"] in ("button", "a") and f["text"] == text)


def type_into(page, name: str, text: str) -> None:
    field(page, name)
    page.keyboard.type(text)


def pick(page, name: str, label: str) -> str:
    """Choose an option of a closed <select> by typing its first letters, as a keyboard user does."""
    field(page, name)
    page.keyboard.type(label)
    return page.evaluate(FOCUSED)["value"]


def tick(page, name: str, value: str = "") -> None:
    tab_to(page, lambda f: f["name"] == name and (not value or f["value"] == value))
    page.keyboard.press("Space")
    assert page.evaluate(FOCUSED)["checked"], f"Space did not tick {name}"


def sent(page, action: Callable[[], None]) -> None:
    """Run the key press that sends a form, and wait for the page it leads to."""
    with page.expect_navigation():
        action()


def test_a_coordinator_works_a_referral_with_the_keyboard_alone(page, flagged_code: str, db: Session) -> None:
    """Clear its flag, add a note, re-route it to a chosen provider, cancel it: all four forms."""
    code = flagged_code
    sign_in_as(page, "coordinator@example.org")
    page.goto(f"/admin/referrals/{code}")

    button(page, "Retirer le signalement : je l'ai examinée")
    sent(page, lambda: page.keyboard.press("Space"))
    assert page.get_by_role("status").inner_text().startswith("Signalement retiré")

    type_into(page, "note", "Appelée ce matin")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert page.get_by_role("status").inner_text() == "Note ajoutée."

    anpe = provider(db, "anpe")
    assert pick(page, "provider_id", anpe.name[:12]) == str(anpe.id)
    button(page, "Réorienter")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert page.get_by_role("status").inner_text() == "Orientation réorientée."

    type_into(page, "reason", "Doublon")
    button(page, "Annuler l'orientation")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert page.get_by_role("status").inner_text() == "Orientation annulée."

    db.expire_all()
    done = db.scalar(select(Referral).where(Referral.code == code))
    assert done.status == Status.CANCELLED and done.provider_id == anpe.id and not done.flagged
    notes = [e.note for e in db.scalars(select(ReferralEvent).where(ReferralEvent.referral_id == done.id))]
    assert "Appelée ce matin" in notes and "Doublon" in notes


def test_the_lists_filters_work_with_the_keyboard_alone(page, flagged_code: str, db: Session) -> None:
    code = flagged_code
    sign_in_as(page, "coordinator@example.org")
    page.goto("/admin/referrals")
    pick(page, "status", "envoy")
    tick(page, "flagged")
    button(page, "Filtrer")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert re.search(r"status=sent.*flagged=1", page.url), page.url
    assert page.locator("tbody tr").count() == 1 and code in page.locator("tbody").inner_text()

    page.goto("/admin/sms")
    pick(page, "status", "envoy")
    button(page, "Filtrer")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert "status=" in page.url

    page.goto("/admin/returnees")
    type_into(page, "phone", "+22370000101")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert "Awa" in page.locator("main").inner_text()


def test_an_admin_creates_and_edits_a_provider_with_the_keyboard_alone(page, flagged_code, db) -> None:
    sign_in_as(page)
    page.goto("/admin/providers/new")
    type_into(page, "name", "Clinique du Fleuve")
    type_into(page, "kind", "health centre")
    field(page, "capacity")
    page.keyboard.press("Control+A")
    page.keyboard.type("12")
    pick(page, "language", "bambara")
    tick(page, "categories", "health")
    tick(page, "national")
    type_into(page, "numbers", "+22370000555")
    button(page, "Enregistrer")
    sent(page, lambda: page.keyboard.press("Enter"))
    db.expire_all()
    made = db.scalar(select(Provider).where(Provider.name == "Clinique du Fleuve"))
    assert made is not None and made.daily_capacity == 12 and made.language == "bm" and made.national
    assert [c.code for c in made.categories] == ["health"]

    page.goto(f"/admin/providers/{made.id}/edit")
    field(page, "capacity")
    page.keyboard.press("Control+A")
    page.keyboard.type("20")
    sent(page, lambda: page.keyboard.press("Enter"))  # Enter in a field sends its form
    db.expire_all()
    assert db.get(Provider, made.id).daily_capacity == 20


def test_an_admin_creates_a_user_with_the_keyboard_alone(page, flagged_code, db: Session) -> None:
    sign_in_as(page)
    page.goto("/admin/users/new")
    type_into(page, "email", "nouvelle@example.org")
    assert pick(page, "role", "coord") == Role.COORDINATOR
    button(page, "Créer")
    sent(page, lambda: page.keyboard.press("Enter"))
    db.expire_all()
    made = db.scalar(select(User).where(User.email == "nouvelle@example.org"))
    assert made is not None and made.role == Role.COORDINATOR


def test_a_user_changes_their_password_with_the_keyboard_alone(page, flagged_code, db: Session) -> None:
    sign_in_as(page, "coordinator@example.org")
    page.goto("/admin/account/password")
    type_into(page, "current_password", PASSWORD)
    type_into(page, "new_password", "a new and longer sentence")
    type_into(page, "new_password2", "a new and longer sentence")
    field(page, "current_password", backwards=True)  # Shift+Tab goes back up the form, past nothing hidden
    button(page, "Changer mon mot de passe")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert page.get_by_role("status").inner_text().startswith("Votre mot de passe est changé")
    db.expire_all()
    assert db.scalar(select(User).where(User.email == "coordinator@example.org")).password_matches(
        "a new and longer sentence"
    )


def test_an_agent_registers_a_person_with_the_keyboard_alone(page, flagged_code, db: Session) -> None:
    make_user(db, "agent@example.org", Role.AGENT)
    sign_in_as(page, "agent@example.org")
    page.goto("/admin/register")
    type_into(page, "phone", "+22370000177")
    type_into(page, "first_name", "Fanta")
    assert pick(page, "sex", "femme") == "f"
    pick(page, "age_group", "26")
    pick(page, "region", "Kayes")
    assert pick(page, "returned_from", "Libye") == "ly"
    pick(page, "returned_since", "moins")
    pick(page, "category", "Emploi")
    tick(page, "consent")
    button(page, "Inscrire")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert "Inscription faite" in page.get_by_role("status").inner_text()
    db.expire_all()
    person = db.scalar(
        select(Returnee).where(Returnee.phone_hash == phone_hash("+22370000177", PHONE_HASH_KEY))
    )
    assert (
        person is not None
        and person.first_name == "Fanta"
        and person.region == "kayes"
        and person.returned_from == "ly"
    )


def test_an_admin_changes_a_role_and_disables_a_user_from_the_list_with_the_keyboard_alone(
    page, flagged_code: str, db: Session
) -> None:
    """The users' list holds a small form per user: the keyboard reaches the one of the row it wants."""
    other = db.scalar(select(User).where(User.email == "coordinator@example.org"))
    row = f"/admin/users/{other.id}/"
    sign_in_as(page)
    page.goto("/admin/users")
    tab_to(page, lambda f: f["name"] == "role" and f["form"] == row + "role")
    page.keyboard.type("lect")
    tab_to(page, lambda f: f["text"] == "Changer le rôle" and f["form"] == row + "role")
    sent(page, lambda: page.keyboard.press("Enter"))
    tab_to(page, lambda f: f["text"] == "Désactiver" and f["form"] == row + "active")
    sent(page, lambda: page.keyboard.press("Space"))
    db.expire_all()
    changed = db.get(User, other.id)
    assert changed.role == Role.VIEWER and not changed.active


def test_the_sessions_filter_takes_dates_typed_on_the_keyboard(page, flagged_code: str) -> None:
    sign_in_as(page, "coordinator@example.org")
    page.goto("/admin/ussd/sessions")
    field(page, "from")
    page.keyboard.type(
        "01012026"
    )  # each part of the date in turn (the same day and month: any order reads it)
    field(page, "to")
    page.keyboard.type("12122026")
    button(page, "Filtrer")
    sent(page, lambda: page.keyboard.press("Enter"))
    assert "from=2026-01-01" in page.url and "to=2026-12-12" in page.url, page.url
