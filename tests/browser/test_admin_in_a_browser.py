"""The admin web in a real browser: what coordinators, viewers and providers do, end to end.

The USSD journey runs through the simulator page, which calls the real webhook; SMS go through
the outbox, a real RQ worker and the gateway emulator, whose inbox the simulator shows.
"""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from models.directory import Provider
from models.phone import masked
from models.referral import Referral, Status
from tests.browser.conftest import csrf_token, sign_in
from tests.conftest import flush_transcripts
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, code_in, referred_for_a_job, run_worker, text_service
from tests.test_admin_referrals import provider, referral_for

APEJ = "+22370000002"  # jobs in Bamako, first choice
REGISTER_AND_ASK_FOR_A_JOB = ["1", "1", "Awa", "2", "3", "1", "1", "1", "1", "1", "1"]


def see(page, path: str, *texts: str) -> None:
    """Open an admin page and check that it shows each text (one line per page a journey visits)."""
    page.goto(path)
    for text in texts:
        assert page.get_by_text(text).first.is_visible(), f"{text!r} not on {path}"


def test_a_coordinator_runs_a_journey_in_the_simulator_and_follows_the_referral(
    page, db: Session, database_url: str, gateway: EmulatorProcess
) -> None:
    sign_in(page, db, Role.ADMIN)
    page.get_by_role("link", name="Simulateur USSD").click()
    page.get_by_label("Numéro de téléphone").fill(RETURNEE)
    page.get_by_role("button", name="Appeler").click()
    for answer in REGISTER_AND_ASK_FOR_A_JOB:
        page.get_by_label("Réponse").fill(answer)
        page.get_by_role("button", name="Envoyer", exact=True).click()
    screen = page.locator("#ussd-screen").inner_text()
    assert "Vous recevrez un SMS" in screen
    code = code_in(screen)
    assert page.get_by_role("button", name="Appeler").is_visible()  # the session ended: dial again

    run_worker(database_url, gateway)  # the outbox's SMS, to the returnee and to the provider
    page.get_by_role("button", name="Actualiser la boîte de réception").click()
    assert code in page.locator(".inbox").inner_text()

    page.get_by_role("link", name="Tableau de bord").click()
    referrals_tile = page.locator(".tile", has_text="orientations").first.inner_text()
    assert referrals_tile.split()[0] == "1" and page.locator("svg.chart rect").count() >= 1

    flush_transcripts(database_url)
    page.get_by_role("link", name="Sessions USSD").click()
    page.locator("table a", has_text="ATUid_sim").first.click()
    assert "Awa" in page.locator("main").inner_text() and code in page.locator("main").inner_text()

    page.get_by_role("link", name="Orientations", exact=True).click()
    page.get_by_role("link", name=code).click()
    anpe = provider(db, "anpe")
    page.get_by_label("Réorienter vers").select_option(str(anpe.id))
    page.get_by_role("button", name="Réorienter", exact=True).click()
    assert page.get_by_role("status").inner_text() == "Orientation réorientée."
    assert db.scalar(select(Referral.provider_id).where(Referral.code == code)) == anpe.id

    see(page, "/admin/audit", "orientation réorientée")
    row = page.locator("tr", has_text="orientation réorientée")
    assert code in row.inner_text() and f"nouveau prestataire: {anpe.id}" in row.inner_text()


def test_a_viewer_sees_masked_numbers_no_actions_and_cannot_post_anyway(
    page, app: Flask, db: Session
) -> None:
    referral = referral_for(app, db)
    sign_in(page, db, Role.VIEWER)
    page.goto(f"/admin/referrals/{referral.code}")
    shown = page.locator("main").inner_text()
    assert masked(RETURNEE) in shown and RETURNEE not in shown and "Awa" not in shown
    assert page.locator("main form").count() == 0 and page.locator("main button").count() == 0

    response = page.request.post(
        f"/admin/referrals/{referral.code}/reroute", form={"csrf_token": csrf_token(page), "provider_id": ""}
    )
    assert response.status == 403
    db.expire_all()
    assert db.get(Referral, referral.id).provider_id == referral.provider_id
    assert db.scalar(select(func.count()).where(AuditEntry.action == "referral.reroute")) == 0


def test_a_provider_accepts_its_referral_on_the_web_and_cannot_see_another_providers(
    page, app: Flask, db: Session, database_url: str, gateway: EmulatorProcess
) -> None:
    mine = referral_for(app, db)  # a job in Bamako: APEJ
    other = referral_for(app, db, phone="+22370000102", category="health")  # a health centre
    apej = db.get(Provider, mine.provider_id)
    assert other.provider_id != apej.id
    sign_in(page, db, Role.PROVIDER, provider_id=apej.id)

    page.goto(f"/admin/referrals/{mine.code}")
    assert "Awa" not in page.locator("main").inner_text()
    page.get_by_role("button", name="Accepter l'orientation").click()
    assert "la personne attend votre appel" in page.get_by_role("status").inner_text()
    person = page.locator("dd.person").all_inner_texts()
    assert person == ["Awa", RETURNEE]
    assert page.get_by_role("button", name=re.compile("Clôturer")).is_visible()
    db.expire_all()
    assert db.get(Referral, mine.id).status == Status.ACCEPTED
    assert db.scalar(select(AuditEntry.object_id).where(AuditEntry.action == "referral.accept")) == mine.code

    run_worker(database_url, gateway)  # the returnee hears of it by SMS, through the outbox
    [told] = [m["text"] for m in gateway.messages_to(RETURNEE) if mine.code in m["text"]]
    assert "accept" in told and apej.name not in told  # a provider's name can say what the need is

    response = page.goto(f"/admin/referrals/{other.code}")
    assert response.status == 404


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    page, app: Flask, db: Session
) -> None:
    referral = referral_for(app, db)
    sign_in(page, db, Role.COORDINATOR)
    page.goto(f"/admin/referrals/{referral.code}")
    form = page.locator("form", has=page.get_by_role("button", name="Réorienter", exact=True))
    form.locator('input[name="csrf_token"]').evaluate("input => input.remove()")
    with page.expect_response(re.compile("/reroute$")) as answer:
        form.get_by_role("button").click()
    assert answer.value.status == 400
    db.expire_all()
    assert db.get(Referral, referral.id).provider_id == referral.provider_id
    assert db.scalar(select(func.count()).where(AuditEntry.action == "referral.reroute")) == 0


def test_a_session_cookie_is_worthless_after_logout(page, browser, live_server, db: Session) -> None:
    sign_in(page, db, Role.COORDINATOR)
    captured = page.context.cookies()
    assert any(c["name"] == "sira_admin" for c in captured)
    page.get_by_role("button", name="Déconnexion").click()
    page.wait_for_url(re.compile("/admin/login"))

    other = browser.new_context(base_url=live_server.url)
    try:
        other.add_cookies(captured)
        stolen = other.new_page()
        stolen.goto("/admin/referrals")
        assert re.search(r"/admin/login", stolen.url)
    finally:
        other.close()


def test_a_coordinator_clears_a_flag_after_not_helped_and_the_count_goes_down(
    page, live_server, db: Session, database_url: str, gateway: EmulatorProcess
) -> None:
    """The returnee asks by USSD, the provider accepts and closes by SMS, the returnee answers
    "2 = not helped" by SMS; the coordinator finds the referral from the header's count."""
    code = referred_for_a_job(live_server.url, gateway, database_url)
    for number, text in ((APEJ, f"OK {code}"), (APEJ, f"FINI {code}"), (RETURNEE, "2")):
        text_service(gateway, database_url, number, text)
    sign_in(page, db, Role.COORDINATOR)
    count = page.locator("header .to-handle")
    waiting = int(count.inner_text().split(":")[-1])
    assert waiting >= 1

    count.click()
    row = page.locator("tr", has_text=code)
    assert "À examiner : la personne dit ne pas avoir été aidée" in row.inner_text()
    row.get_by_role("link", name=code).click()
    assert "la personne dit ne pas avoir été aidée" in page.locator(".flagged").inner_text()
    page.get_by_role("button", name="Retirer le signalement : je l'ai examinée").click()

    assert page.get_by_role("status").inner_text().startswith("Signalement retiré")
    assert int(count.inner_text().split(":")[-1]) == waiting - 1
    assert page.locator(".flagged").count() == 0
    assert db.scalar(select(Referral.status).where(Referral.code == code)) == Status.CLOSED
