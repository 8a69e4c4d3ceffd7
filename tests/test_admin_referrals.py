"""Referrals in the admin: who sees what, re-routing through the outbox, paging in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from infra import queues
from models.admin import AuditEntry, Role
from models.base import utcnow
from models.directory import Provider
from models.messaging import OutboundSms
from models.phone import masked, phone_hash
from models.referral import Referral, ReferralEvent, Status
from models.returnee import Returnee
from services.referrals import refer
from tests.conftest import PHONE_HASH_KEY
from tests.test_admin_access import login, make_user, token
from web.admin.paging import Page
from web.context import sira

RETURNEE = "+22370000101"
CONSENT_VERSION = "consent-v1"  # any version: refer() only needs one


@pytest.fixture
def seeded(app: Flask) -> Flask:
    result = app.test_cli_runner().invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    return app


def returnee(db: Session, phone: str = RETURNEE, region: str = "bamako", name: str = "Awa") -> Returnee:
    person = Returnee(
        phone_hash=phone_hash(phone, PHONE_HASH_KEY), phone_e164=phone, first_name=name, region=region,
        age_group="25_34", consent_version=CONSENT_VERSION, consent_at=utcnow(), registered_at=utcnow(),
    )  # fmt: skip
    db.add(person)
    db.flush()
    return person


def referral_for(
    app: Flask, db: Session, phone: str = RETURNEE, category: str = "jobs", **kw: str
) -> Referral:
    referred = refer(db, returnee(db, phone, **kw), category, sira(app).sms_texts)
    db.commit()
    return referred.referral


def provider(db: Session, slug: str) -> Provider:
    return db.scalar(select(Provider).where(Provider.slug == slug))


def signed_in(app: Flask, db: Session, role: Role, provider_id: int | None = None) -> FlaskClient:
    email = f"{role.value}{provider_id or ''}@example.org"
    make_user(db, email, role, provider_id)
    return login(app.test_client(), email)


def test_a_coordinator_reroutes_to_a_chosen_provider_through_the_outbox(
    seeded: Flask, db: Session, redis: Redis
) -> None:
    referral = referral_for(seeded, db)
    first, anpe = referral.provider_id, provider(db, "anpe")
    assert first is not None and first != anpe.id
    client = signed_in(seeded, db, Role.COORDINATOR)
    page = client.get(f"/admin/referrals/{referral.code}")
    assert "Réorienter" in page.text and anpe.name.replace("'", "&#39;") in page.text
    response = client.post(
        f"/admin/referrals/{referral.code}/reroute",
        data={"provider_id": str(anpe.id), "csrf_token": token(client)},
    )
    assert response.status_code == 302
    db.expire_all()
    moved = db.get(Referral, referral.id)
    assert (moved.status, moved.provider_id) == (Status.SENT, anpe.id)
    [alert] = db.scalars(
        select(OutboundSms).where(
            OutboundSms.referral_id == referral.id,
            OutboundSms.purpose == "provider_alert",
            OutboundSms.to_hash == anpe.numbers[0].phone_hash,
        )
    ).all()
    assert queues.sms_job_id(alert.id) in Queue(queues.SMS, connection=redis).job_ids
    withdrawn, sent = moved.events[-2:]
    assert (withdrawn.to_status, withdrawn.provider_id, withdrawn.channel) == (Status.DECLINED, first, "web")
    assert (sent.to_status, sent.provider_id, sent.actor) == (Status.SENT, anpe.id, withdrawn.actor)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.reroute"))
    assert entry.object_id == referral.code
    assert entry.detail == {"from_provider_id": first, "to_provider_id": anpe.id, "chosen": True}


def test_an_automatic_reroute_skips_the_provider_it_is_taken_from(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    first = referral.provider_id
    client = signed_in(seeded, db, Role.ADMIN)
    client.post(
        f"/admin/referrals/{referral.code}/reroute", data={"provider_id": "", "csrf_token": token(client)}
    )
    db.expire_all()
    moved = db.get(Referral, referral.id)
    assert moved.status == Status.SENT and moved.provider_id not in (None, first)


def test_an_empty_note_is_refused_with_its_reason_and_adds_nothing(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.COORDINATOR)
    events = len(referral.events)
    for blank in ("", "   \n\t "):
        page = client.post(
            f"/admin/referrals/{referral.code}/note", data={"note": blank, "csrf_token": token(client)}
        )
        assert page.status_code == 400 and "Saisissez d&#39;abord la note." in page.text
    db.expire_all()
    assert len(db.get(Referral, referral.id).events) == events
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.note")) is None


def test_a_coordinator_cancels_and_adds_notes(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.COORDINATOR)
    client.post(
        f"/admin/referrals/{referral.code}/note", data={"note": "Rappelée", "csrf_token": token(client)}
    )
    client.post(
        f"/admin/referrals/{referral.code}/cancel", data={"reason": "doublon", "csrf_token": token(client)}
    )
    db.expire_all()
    done = db.get(Referral, referral.id)
    assert done.status == Status.CANCELLED
    assert [e.note for e in done.events[-2:]] == ["Rappelée", "doublon"]
    actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.object_id == referral.code)))
    assert {"referral.note", "referral.cancel"} <= set(actions)
    assert all("Rappelée" not in str(e.detail) for e in db.scalars(select(AuditEntry)))
    again = client.post(f"/admin/referrals/{referral.code}/cancel", data={"csrf_token": token(client)})
    assert again.status_code == 409


def test_a_viewer_sees_masked_details_and_cannot_change_anything(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    viewer = signed_in(seeded, db, Role.VIEWER)
    page = viewer.get(f"/admin/referrals/{referral.code}")
    assert page.status_code == 200
    assert masked(RETURNEE) in page.text
    assert RETURNEE not in page.text and "Awa" not in page.text
    assert "Réorienter" not in page.text and "Annuler" not in page.text
    csrf = token(viewer)
    for action in ("reroute", "cancel", "note"):
        data = {"csrf_token": csrf, "note": "x", "provider_id": ""}
        assert viewer.post(f"/admin/referrals/{referral.code}/{action}", data=data).status_code == 403
    db.expire_all()
    assert db.get(Referral, referral.id).status == Status.SENT
    view = db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.view"))
    assert view.detail["masked"] is True and view.detail["returnee_id"] == referral.returnee_id


def test_staff_see_the_details_in_clear_and_each_view_is_audited(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.COORDINATOR)
    page = client.get(f"/admin/referrals/{referral.code}")
    assert RETURNEE in page.text and "Awa" in page.text
    views = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "referral.view")))
    assert len(views) == 1 and views[0].detail["masked"] is False


def test_a_provider_sees_only_its_referrals(seeded: Flask, db: Session) -> None:
    own = referral_for(seeded, db)
    other = referral_for(seeded, db, "+22370000102", category="legal")
    assert own.provider_id != other.provider_id
    client = signed_in(seeded, db, Role.PROVIDER, own.provider_id)
    listing = client.get("/admin/referrals").text
    assert own.code in listing and other.code not in listing
    page = client.get(f"/admin/referrals/{own.code}")
    assert page.status_code == 200 and RETURNEE not in page.text  # not before acceptance
    assert client.get(f"/admin/referrals/{other.code}").status_code == 404
    assert client.get(f"/admin/referrals/{other.code}?provider={other.provider_id}").status_code == 404
    csrf = token(client)
    assert (
        client.post(f"/admin/referrals/{other.code}/note", data={"csrf_token": csrf, "note": "x"}).status_code
        == 404
    )
    assert client.post(f"/admin/referrals/{own.code}/cancel", data={"csrf_token": csrf}).status_code == 403
    assert client.get("/admin/audit").status_code == 403


def test_the_list_is_paginated_in_the_database_newest_first(
    seeded: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    codes = [referral_for(seeded, db, f"+2237000020{i}").code for i in range(5)]
    monkeypatch.setattr(Page, "SIZE", 2)
    client = signed_in(seeded, db, Role.ADMIN)
    statements: list[str] = []
    engine = sira(seeded).sessions.kw["bind"]

    def capture(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        pages = [client.get(f"/admin/referrals?page={n}").text for n in (1, 2, 3)]
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    shown = [[c for c in codes if c in page] for page in pages]
    newest_first = codes[::-1]
    assert [set(s) for s in shown] == [set(newest_first[0:2]), set(newest_first[2:4]), set(newest_first[4:])]
    assert pages[0].index(newest_first[0]) < pages[0].index(newest_first[1])
    assert "Suivante" in pages[1] and "Suivante" not in pages[2]
    listing = [s for s in statements if "FROM referral" in s and "ORDER BY referral.created_at DESC" in s]
    assert listing and all("LIMIT" in s and "OFFSET" in s for s in listing)


def test_the_list_filters_by_status_category_provider_and_overdue(seeded: Flask, db: Session) -> None:
    jobs = referral_for(seeded, db)
    legal = referral_for(seeded, db, "+22370000102", category="legal")
    late = referral_for(seeded, db, "+22370000103", category="activity")
    db.get(Referral, late.id).assigned_at = utcnow() - timedelta(hours=30)
    db.get(Referral, legal.id).move(Status.ACCEPTED, actor="test", channel="test")
    db.commit()
    client = signed_in(seeded, db, Role.ADMIN)

    def listed(query: str) -> set[str]:
        text = client.get(f"/admin/referrals?{query}").text
        return {r.code for r in (jobs, legal, late) if r.code in text}

    assert listed("") == {jobs.code, legal.code, late.code}
    assert listed("status=accepted") == {legal.code}
    assert listed("category=jobs") == {jobs.code}
    assert listed(f"provider={jobs.provider_id}") == {jobs.code}
    assert listed("overdue=1") == {late.code}
    assert listed("region=kayes") == set()
    assert listed("status=bogus&page=x") == {jobs.code, legal.code, late.code}


def test_a_reroute_event_names_the_user_in_the_timeline(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.ADMIN)
    client.post(f"/admin/referrals/{referral.code}/note", data={"note": "vu", "csrf_token": token(client)})
    assert "admin@example.org" in client.get(f"/admin/referrals/{referral.code}").text
    [actor] = [e.actor for e in db.scalars(select(ReferralEvent)) if e.note == "vu"]  # notes are encrypted
    assert actor.startswith("user:")
