"""A referral flagged for a coordinator reaches the admin: a returnee who answers "2 = not helped"
after the closure, by SMS through the gateway's webhook and a real worker, puts the referral in
the list's "flagged" filter and in the header's count, with why in words; a coordinator clears
the flag from the referral's page, and nothing else changes.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEntry, OutboundSms, Referral
from models.admin import Role
from models.referral import Flag
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, referred_for_a_job, seeded_app, text_service
from tests.test_admin_access import login, make_user, token
from web.admin.i18n import LANG_COOKIE

APEJ = "+22370000002"  # jobs in Bamako, first choice
NOT_HELPED = "la personne dit ne pas avoir été aidée"


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.fixture
def closed_code(live_server, gateway: EmulatorProcess, database_url: str) -> str:
    """A returnee asked for a job by USSD; APEJ accepted and closed it by SMS: the returnee was asked."""
    code = referred_for_a_job(live_server.url, gateway, database_url)
    text_service(gateway, database_url, APEJ, f"OK {code}")
    text_service(gateway, database_url, APEJ, f"FINI {code}")
    return code


def coordinator(app: Flask, db: Session, role: Role = Role.COORDINATOR) -> FlaskClient:
    make_user(db, f"{role.value}@example.org", role)
    return login(app.test_client(), f"{role.value}@example.org")


def to_handle(page: str) -> int:
    """The header's count, as the page shows it."""
    return int(re.search(r'class="to-handle[^"]*"[^>]*>[^<]*?(\d+)</a>', page).group(1))


def referral(db: Session, code: str) -> Referral:
    db.expire_all()
    return db.scalar(select(Referral).where(Referral.code == code))


def test_not_helped_after_the_closure_puts_the_referral_before_the_coordinators(
    app: Flask, db: Session, gateway: EmulatorProcess, database_url: str, closed_code: str
) -> None:
    client = coordinator(app, db)
    before = client.get("/admin/referrals?flagged=1").text
    assert closed_code not in before
    waiting = to_handle(before)

    text_service(gateway, database_url, RETURNEE, "2")

    flagged = client.get("/admin/referrals?flagged=1").text
    assert closed_code in flagged and NOT_HELPED in flagged
    assert to_handle(flagged) == waiting + 1
    # The header's count leads to the list of what it counts ("waiting for the coordination").
    assert 'href="/admin/referrals?overdue=1"' in flagged
    assert closed_code in client.get("/admin/referrals?overdue=1").text
    page = client.get(f"/admin/referrals/{closed_code}").text
    assert "Signalée à un coordinateur" in page and NOT_HELPED in page and "Retirer le signalement" in page
    client.set_cookie(LANG_COOKIE, "en", path="/admin")
    english = client.get(f"/admin/referrals/{closed_code}").text
    assert "the returnee says they were not helped" in english and "Clear the flag" in english


def test_a_coordinator_clears_the_flag_and_nothing_else_changes(
    app: Flask, db: Session, gateway: EmulatorProcess, database_url: str, closed_code: str
) -> None:
    text_service(gateway, database_url, RETURNEE, "2")
    flagged = referral(db, closed_code)
    assert flagged.flagged and flagged.flag_reason == Flag.NOT_HELPED
    kept = (flagged.status, flagged.feedback, flagged.provider_id, flagged.updated_at, len(flagged.events))
    sent = db.scalar(select(func.count(OutboundSms.id)))
    client = coordinator(app, db)
    waiting = to_handle(client.get("/admin/referrals").text)

    response = client.post(f"/admin/referrals/{closed_code}/unflag", data={"csrf_token": token(client)})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).text
    assert "Signalement retiré" in page and "Rien d&#39;autre n&#39;a changé" in page
    assert "Retirer le signalement :" not in page  # the button is gone with the flag
    assert to_handle(page) == waiting - 1
    assert closed_code not in client.get("/admin/referrals?flagged=1").text
    cleared = referral(db, closed_code)
    assert not cleared.flagged and cleared.flag_reason is None
    assert (
        cleared.status,
        cleared.feedback,
        cleared.provider_id,
        cleared.updated_at,
        len(cleared.events),
    ) == kept
    assert db.scalar(select(func.count(OutboundSms.id))) == sent  # nobody is told anything
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.unflag"))
    assert entry.object_id == closed_code and entry.detail == {"flag": "not_helped"}
    audit_page = login(app.test_client(), make_user(db, "admin@example.org", Role.ADMIN).email).get(
        "/admin/audit"
    )
    assert "signalement retiré" in audit_page.text and NOT_HELPED in audit_page.text

    again = client.post(f"/admin/referrals/{closed_code}/unflag", data={"csrf_token": token(client)})
    assert "n&#39;était pas signalée : rien n&#39;a changé" in client.get(again.headers["Location"]).text
    assert db.scalar(select(func.count(AuditEntry.id)).where(AuditEntry.action == "referral.unflag")) == 1


def test_only_staff_may_clear_a_flag_and_never_without_the_form_token(
    app: Flask, db: Session, gateway: EmulatorProcess, database_url: str, closed_code: str
) -> None:
    text_service(gateway, database_url, RETURNEE, "2")
    viewer = coordinator(app, db, Role.VIEWER)
    page = viewer.get(f"/admin/referrals/{closed_code}").text
    assert NOT_HELPED in page and "Retirer le signalement" not in page  # a viewer reads why, and no button
    assert (
        viewer.post(f"/admin/referrals/{closed_code}/unflag", data={"csrf_token": token(viewer)}).status_code
        == 403
    )
    client = coordinator(app, db)
    assert client.post(f"/admin/referrals/{closed_code}/unflag", data={}).status_code == 400
    assert referral(db, closed_code).flagged
