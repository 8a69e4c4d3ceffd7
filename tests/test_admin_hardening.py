"""What a review of the admin found: edited URLs never make a 500, a provider reads no one else's
notes on its referral's timeline, formulas stay out of the CSV, and reading the SMS log is audited."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from tests import test_admin_referrals
from tests.test_admin_access import token
from tests.test_admin_referrals import referral_for, signed_in

seeded = test_admin_referrals.seeded  # the seeded directory, a fixture

EDITED_URLS = [
    ("/admin/referrals?page=%C2%B2", 200),  # "²" passes str.isdigit() but not int()
    ("/admin/referrals?provider=99999999999999999999", 200),
    ("/admin/audit?page=99999999999999999999", 200),
    ("/admin/referrals/%00", 400),
    ("/admin/referrals?category=%00", 400),
    ("/admin/returnees/99999999999", 404),
    ("/admin/providers/99999999999/edit", 404),
    ("/admin/dashboard?from=9999-12-01&to=9999-12-31", 200),
    ("/admin/dashboard?to=0001-01-10", 200),
    ("/admin/ussd/sessions?to=9999-12-31", 200),
]


@pytest.mark.parametrize(("url", "status"), EDITED_URLS)
def test_edited_urls_get_an_answer_not_a_500(seeded: Flask, db: Session, url: str, status: int) -> None:
    client = signed_in(seeded, db, Role.ADMIN)
    assert client.get(url).status_code == status


def test_a_provider_reads_neither_coordination_notes_nor_staff_names(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    coordinator = signed_in(seeded, db, Role.COORDINATOR)
    note = "son frere Moussa a appele"
    response = coordinator.post(f"/admin/referrals/{referral.code}/note",
                                data={"note": note, "csrf_token": token(coordinator)})  # fmt: skip
    assert response.status_code == 302 and note in coordinator.get(f"/admin/referrals/{referral.code}").text
    focal_point = signed_in(seeded, db, Role.PROVIDER, referral.provider_id)
    page = focal_point.get(f"/admin/referrals/{referral.code}").text
    assert referral.code in page and note not in page and "coordinator@example.org" not in page
    viewer = signed_in(seeded, db, Role.VIEWER)
    assert note not in viewer.get(f"/admin/referrals/{referral.code}").text


def test_the_dashboard_csv_takes_no_formula_for_a_region(seeded: Flask, db: Session) -> None:
    client = signed_in(seeded, db, Role.COORDINATOR)
    csv = client.get("/admin/dashboard.csv?region==cmd|'/c calc'!A1").text
    assert "=cmd" not in csv


def test_reading_the_sms_log_is_audited_for_staff(seeded: Flask, db: Session) -> None:
    client = signed_in(seeded, db, Role.COORDINATOR)
    assert client.get("/admin/sms?direction=in").status_code == 200
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "sms.view"))
    assert entry is not None and entry.object_id == "in"
