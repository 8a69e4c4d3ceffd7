"""Referrals as CSV: the list's filters, facts only (no name, no number), a provider's own, audited."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from tests.test_admin_dashboard import known_data
from tests.test_admin_referrals import provider, signed_in
from web.admin.export import COLUMNS


@pytest.fixture
def seeded(app: Flask) -> Flask:
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    return app


def exported(client: FlaskClient, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/admin/referrals.csv?{query}")
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/csv" and response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="sira-referrals-')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == COLUMNS
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]


def test_every_referral_newest_first_with_its_facts_and_times(seeded: Flask, db: Session) -> None:
    known_data(db)
    rows = exported(signed_in(seeded, db, Role.COORDINATOR))
    assert [r["code"] for r in rows] == ["EEEEE", "DDDDD", "CCCCC", "BBBBB", "AAAAA", "FFFFF"]
    a = rows[4]
    anpe = provider(db, "anpe").name
    assert a == {
        "code": "AAAAA", "created_at": "2026-01-05T10:00:00Z", "status": "accepted", "category": "jobs",
        "region": "bamako", "provider": anpe, "assigned_at": "2026-01-05T10:01:00Z",
        "accepted_at": "2026-01-05T12:00:00Z", "hours_to_acceptance": "2.00", "last_change": "2026-01-05T10:00:00Z",
    }  # fmt: skip
    desk = rows[0]
    assert (desk["provider"], desk["assigned_at"], desk["accepted_at"], desk["hours_to_acceptance"]) == (
        "",
    ) * 4


def test_the_list_filters_apply_and_the_list_links_to_the_export(seeded: Flask, db: Session) -> None:
    known = known_data(db)
    client = signed_in(seeded, db, Role.ADMIN)
    assert [r["code"] for r in exported(client, "status=accepted")] == ["BBBBB", "AAAAA", "FFFFF"]
    assert [r["code"] for r in exported(client, "category=jobs&region=kayes")] == ["EEEEE", "BBBBB"]
    assert [r["code"] for r in exported(client, "overdue=1")] == ["EEEEE", "DDDDD"]
    assert [r["code"] for r in exported(client, "provider=desk")] == ["EEEEE"]
    assert [r["code"] for r in exported(client, f"provider={known.providers['oim']}")] == ["DDDDD", "CCCCC"]
    assert exported(client, "status=bogus&provider=x") == exported(client)
    assert exported(client, "region=nowhere") == []
    listing = client.get("/admin/referrals?status=accepted&region=kayes").text
    assert 'href="/admin/referrals.csv?status=accepted&amp;region=kayes"' in listing


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER])
def test_no_name_and_no_phone_number_leave_in_an_export(seeded: Flask, db: Session, role: Role) -> None:
    known_data(db)
    client = signed_in(seeded, db, role)
    text = client.get("/admin/referrals.csv").text
    assert "+22370000301" not in text and "22370000" not in text and "Awa" not in text
    assert len(text.splitlines()) == 7


def test_a_provider_exports_its_own_referrals_only(seeded: Flask, db: Session) -> None:
    known = known_data(db)
    client = signed_in(seeded, db, Role.PROVIDER, known.providers["anpe"])
    assert [r["code"] for r in exported(client)] == ["BBBBB", "AAAAA", "FFFFF"]
    assert exported(client, f"provider={known.providers['oim']}") == []
    assert exported(client, "provider=desk") == []


def test_each_export_is_audited_with_its_filters_and_nothing_personal(seeded: Flask, db: Session) -> None:
    known_data(db)
    client = signed_in(seeded, db, Role.VIEWER)
    client.get("/admin/referrals.csv?status=sent&overdue=1&page=3")
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all()
    assert (entry.object_type, entry.object_id) == ("referrals", None)
    assert entry.detail == {"status": "sent", "overdue": "1"}


def test_a_name_that_looks_like_a_formula_is_defused(seeded: Flask, db: Session) -> None:
    known = known_data(db)
    anpe = provider(db, "anpe")
    anpe.name = "=HYPERLINK(1)"
    db.commit()
    rows = exported(signed_in(seeded, db, Role.ADMIN), f"provider={known.providers['anpe']}")
    assert {r["provider"] for r in rows} == {"'=HYPERLINK(1)"}


def test_a_large_export_streams_every_row(
    seeded: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    known_data(db)
    monkeypatch.setattr("web.admin.export.BATCH", 2)  # several batches out of six rows
    client = signed_in(seeded, db, Role.ADMIN)
    response = client.get("/admin/referrals.csv")
    assert response.is_streamed or len(response.response) > 1
    assert len(exported(client)) == 6
