"""The dashboard: figures counted by the database for a period and a region, on both back-ends."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.ussd import UssdStep
from models.admin import AuditEntry, Role
from models.base import utcnow
from models.messaging import OutboundSms, SmsStatus
from models.phone import phone_hash
from models.referral import Referral, ReferralEvent, Status
from models.returnee import Returnee
from tests.conftest import PHONE_HASH_KEY, flush_transcripts
from tests.test_admin_referrals import provider, signed_in
from web.context import sira

PERIOD = "from=2026-01-05&to=2026-01-25"  # three whole weeks, Monday to Sunday


@pytest.fixture
def seeded(app: Flask) -> Flask:
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    return app


def at(day: int, hour: int = 10, month: int = 1, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def person(db: Session, phone: str, region: str, registered: datetime | None, name: str = "Awa") -> Returnee:
    found = Returnee(
        phone_hash=phone_hash(phone, PHONE_HASH_KEY), phone_e164=phone, first_name=name, region=region,
        consent_version="v1" if registered else None, consent_at=registered, registered_at=registered,
    )  # fmt: skip
    db.add(found)
    db.flush()
    return found


@dataclass
class Known:
    codes: dict[str, str]  # letter -> referral code
    providers: dict[str, int]


def referral(
    db: Session, code: str, created: datetime, status: Status, category: str, region: str,
    provider_id: int | None, accepted_after_h: float | None = None, returnee_id: int | None = None,
) -> Referral:  # fmt: skip
    """A referral with the timeline its status implies; acceptance `accepted_after_h` after creation."""
    row = Referral(
        code=code, returnee_id=returnee_id, category=category, requested_category=category, region=region,
        provider_id=provider_id, status=status, created_at=created, updated_at=created,
        assigned_at=created + timedelta(minutes=1) if provider_id else None,
    )  # fmt: skip
    row.events.append(ReferralEvent(at=created, to_status=Status.NEW, actor="returnee", channel="ussd"))
    if provider_id:
        row.events.append(
            ReferralEvent(at=created + timedelta(minutes=1), from_status=Status.NEW, to_status=Status.SENT,
                          actor="system", channel="ussd", provider_id=provider_id)
        )  # fmt: skip
    if accepted_after_h is not None:
        row.events.append(
            ReferralEvent(at=created + timedelta(hours=accepted_after_h), from_status=Status.SENT,
                          to_status=Status.ACCEPTED, actor=f"provider:{provider_id}", channel="sms")
        )  # fmt: skip
    if status == Status.CLOSED:
        row.events.append(
            ReferralEvent(at=created + timedelta(days=5), from_status=Status.ACCEPTED, to_status=Status.CLOSED,
                          actor=f"provider:{provider_id}", channel="sms")
        )  # fmt: skip
    db.add(row)
    db.flush()
    return row


def sms(db: Session, created: datetime, status: SmsStatus, delivery: str | None, cost: str | None,
        referral_id: int | None) -> None:  # fmt: skip
    db.add(
        OutboundSms(to_e164="+22370000999", to_hash="h" * 64, body="x", purpose="provider_alert",
                    referral_id=referral_id, status=status, delivery_status=delivery, cost=cost,
                    created_at=created)
    )  # fmt: skip


def known_data(db: Session) -> Known:
    """Five referrals in the period (two in the week of 5 January, two in the next, one in the third), one before."""
    anpe, oim = provider(db, "anpe").id, provider(db, "oim-mali").id
    first = person(db, "+22370000301", "bamako", at(5))
    person(db, "+22370000302", "kayes", at(10))
    person(db, "+22370000303", "bamako", at(1, month=12, year=2025))
    person(db, "+22370000304", "bamako", None)  # dialled, never registered
    old = utcnow() - timedelta(days=3)
    a = referral(db, "AAAAA", at(5), Status.ACCEPTED, "jobs", "bamako", anpe, 2, returnee_id=first.id)
    b = referral(db, "BBBBB", at(6), Status.ACCEPTED, "jobs", "kayes", anpe, 4)
    referral(db, "CCCCC", at(13), Status.CLOSED, "legal", "bamako", oim, 10)
    d = referral(db, "DDDDD", at(14), Status.SENT, "health", "bamako", oim)
    d.assigned_at = old  # past the provider's deadline
    referral(db, "EEEEE", at(20), Status.NEW, "jobs", "kayes", None)  # at the coordination desk
    referral(db, "FFFFF", at(31, month=12, year=2025), Status.ACCEPTED, "jobs", "bamako", anpe, 100)
    sms(db, at(5, 11), SmsStatus.ACCEPTED, "Success", "XOF 25.0000", a.id)
    sms(db, at(5, 12), SmsStatus.ACCEPTED, "Success", "XOF 50.0000", a.id)
    sms(db, at(6, 11), SmsStatus.ACCEPTED, "Failed", "XOF 25.0000", b.id)
    sms(db, at(7), SmsStatus.FAILED, None, "0", None)
    sms(db, at(31, month=12, year=2025), SmsStatus.ACCEPTED, "Success", "XOF 25.0000", None)
    db.commit()
    return Known({c: c * 5 for c in "ABCDEF"}, {"anpe": anpe, "oim": oim})


def figures(client: FlaskClient, query: str) -> dict[tuple[str, str], str]:
    response = client.get(f"/admin/dashboard.csv?{query}")
    assert response.status_code == 200, response.text
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["figure", "key", "value"]
    return {(f, k): v for f, k, v in rows[1:]}


def test_the_figures_of_a_known_data_set(seeded: Flask, db: Session) -> None:
    known_data(db)
    client = signed_in(seeded, db, Role.COORDINATOR)
    got = figures(client, PERIOD)
    assert got[("returnees", "registered")] == "2"
    assert got[("referrals", "total")] == "5"
    assert {k: v for (f, k), v in got.items() if f == "status"} == {
        "accepted": "2", "closed": "1", "sent": "1", "new": "1",
    }  # fmt: skip
    assert {k: v for (f, k), v in got.items() if f == "category"} == {
        "jobs": "3",
        "legal": "1",
        "health": "1",
    }
    assert {k: v for (f, k), v in got.items() if f == "region"} == {"bamako": "3", "kayes": "2"}
    assert [(k, v) for (f, k), v in got.items() if f == "week"] == [
        ("2026-01-05", "2"), ("2026-01-12", "2"), ("2026-01-19", "1"),
    ]  # fmt: skip
    assert got[("acceptance", "accepted")] == "3"
    assert got[("acceptance", "median_hours")] == "4.00"  # of 2, 4 and 10 hours
    assert got[("overdue", "now")] == "2"  # D past its deadline, E at the desk
    assert (got[("sms", "total")], got[("sms", "accepted")], got[("sms", "delivered")]) == ("4", "3", "2")
    assert (got[("sms", "undelivered")], got[("sms", "refused")]) == ("1", "1")
    assert got[("sms", "delivery_rate")] == "0.6667"
    assert got[("sms_cost", "XOF")] == "100.0000"


def test_the_region_filter_applies_to_every_figure(seeded: Flask, db: Session) -> None:
    known_data(db)
    client = signed_in(seeded, db, Role.ADMIN)
    got = figures(client, PERIOD + "&region=bamako")
    assert got[("period", "region")] == "bamako"
    assert (got[("returnees", "registered")], got[("referrals", "total")]) == ("1", "3")
    assert [(k, v) for (f, k), v in got.items() if f == "week"] == [
        ("2026-01-05", "1"), ("2026-01-12", "2"), ("2026-01-19", "0"),
    ]  # fmt: skip
    assert got[("acceptance", "median_hours")] == "6.00"  # of 2 and 10 hours: the two middle ones
    assert got[("overdue", "now")] == "1"
    assert (got[("sms", "total")], got[("sms", "delivered")], got[("sms", "delivery_rate")]) == (
        "2",
        "2",
        "1.0000",
    )
    assert got[("sms_cost", "XOF")] == "75.0000"
    kayes = figures(client, PERIOD + "&region=kayes")
    assert kayes[("acceptance", "median_hours")] == "4.00" and kayes[("overdue", "now")] == "1"


def test_the_page_shows_the_figures_and_a_weekly_chart_without_inline_style(
    seeded: Flask, db: Session
) -> None:
    known_data(db)
    client = signed_in(seeded, db, Role.VIEWER)
    page = client.get(f"/admin/dashboard?{PERIOD}")
    assert page.status_code == 200
    assert "Tableau de bord" in page.text and "4.0 h" in page.text and "66.7 %" in page.text
    assert "100.00 XOF" in page.text
    svg = re.search(r"<svg.*?</svg>", page.text, re.S).group(0)
    assert len(re.findall(r"<rect ", svg)) == 3 and "<title>05/01/2026: 2</title>" in svg
    assert "style=" not in page.text and "<script" not in page.text
    assert 'href="/admin/referrals?overdue=1"' in page.text
    assert "/admin/dashboard.csv?from=2026-01-05&amp;to=2026-01-25" in page.text
    assert "+22370000301" not in page.text and "Awa" not in page.text


def test_the_default_period_is_the_last_twelve_weeks(seeded: Flask, db: Session) -> None:
    now = utcnow()
    referral(db, "NOWNO", now - timedelta(hours=1), Status.NEW, "jobs", "bamako", None)
    referral(db, "OLDOL", now - timedelta(weeks=13), Status.NEW, "jobs", "bamako", None)
    db.commit()
    client = signed_in(seeded, db, Role.ADMIN)
    got = figures(client, "")
    start = datetime.fromisoformat(got[("period", "from")]).date()
    assert start.weekday() == 0 and (now.date() - start).days in range(77, 84)
    assert got[("period", "to")] == now.date().isoformat()
    assert got[("referrals", "total")] == "1"
    assert len([k for f, k in got if f == "week"]) == 12


@pytest.mark.parametrize(
    "query",
    ["from=2026-13-01", "from=2026-02-01&to=2026-01-01", "from=2000-01-01&to=2026-01-01", "to=nonsense"],
)
def test_unreadable_or_unreasonable_periods_fall_back_to_the_default_and_say_so(
    seeded: Flask, db: Session, query: str
) -> None:
    client = signed_in(seeded, db, Role.ADMIN)
    page = client.get(f"/admin/dashboard?{query}")
    assert page.status_code == 200
    assert 'class="error"' in page.text and "12 dernières semaines" in page.text
    assert figures(client, query)[("period", "to")] == utcnow().date().isoformat()


def test_a_region_that_is_not_a_code_is_dropped_not_copied_into_the_csv(seeded: Flask, db: Session) -> None:
    client = signed_in(seeded, db, Role.ADMIN)
    for region in ("=SUM(1+1)", "bamako;x", "k" * 21):
        csv_text = client.get("/admin/dashboard.csv", query_string={"region": region}).text
        assert region not in csv_text and "SUM" not in csv_text
    assert "kayes" in client.get("/admin/dashboard.csv", query_string={"region": "kayes"}).text


def test_staff_land_on_the_dashboard_providers_on_their_referrals(seeded: Flask, db: Session) -> None:
    anpe = provider(db, "anpe").id
    for role in (Role.ADMIN, Role.COORDINATOR, Role.VIEWER):
        client = signed_in(seeded, db, role)
        assert client.get("/admin/").headers["Location"] == "/admin/dashboard"
        assert 'href="/admin/dashboard"' in client.get("/admin/referrals").text
    focal = signed_in(seeded, db, Role.PROVIDER, anpe)
    assert focal.get("/admin/").headers["Location"] == "/admin/referrals"
    assert focal.get("/admin/dashboard").status_code == 403
    assert focal.get("/admin/dashboard.csv").status_code == 403
    assert 'href="/admin/dashboard"' not in focal.get("/admin/referrals").text
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "export")) is None


def test_the_figures_export_is_audited_with_its_filters(seeded: Flask, db: Session) -> None:
    client = signed_in(seeded, db, Role.VIEWER)
    response = client.get(f"/admin/dashboard.csv?{PERIOD}&region=kayes")
    assert 'filename="sira-dashboard-2026-01-05-2026-01-25.csv"' in response.headers["Content-Disposition"]
    [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "export")).all()
    assert entry.object_type == "dashboard"
    assert entry.detail == {"from": "2026-01-05", "to": "2026-01-25", "region": "kayes"}


def test_sessions_split_by_operator_whatever_transport_brought_them(
    seeded: Flask, db: Session, database_url: str
) -> None:
    """Africa's Talking and an SMPP gateway both say which network a session is on: the
    dashboard counts sessions by operator from it."""
    web = seeded.test_client()
    for session_id, number, network in (("ATUid_o1", "+22370000311", "61002"), ("ATUid_m1", "+22366000312", "61001"),
                                        ("ATUid_x1", "+22370000313", "")):  # fmt: skip
        form = {"sessionId": session_id, "serviceCode": "*384*7472#", "phoneNumber": number,
                "networkCode": network, "text": ""}  # fmt: skip
        assert web.post("/ussd", data=form).text.startswith("CON ")
    smpp = UssdStep("smpp-o2", "+22370000314", "*384*7472#", "", cumulative=False, network="61002",
                    transport="smpp", dialled=True, step_id="1")  # fmt: skip
    assert not sira(seeded).converse(smpp).end
    flush_transcripts(database_url)
    page = signed_in(seeded, db, Role.VIEWER).get("/admin/dashboard").text
    table = re.search(r"Sessions USSD par opérateur.*?</table>", page, re.S).group(0)
    rows = dict(re.findall(r"<tr><td>(.*?)</td><td>(\d+)</td></tr>", table))
    assert rows == {"Orange Mali": "2", "Moov Africa Malitel": "1", "Réseau inconnu": "1"}, rows
