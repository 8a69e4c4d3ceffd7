"""Coordinators are told: the header counts what waits on them, pages link a person's sessions
and referrals, the queues page shows whether workers are alive; sessions show when they ended."""

from __future__ import annotations

import html
from datetime import timedelta

from flask import Flask
from redis import Redis
from rq import Queue, Worker
from sqlalchemy.orm import Session

from infra import queues
from models.admin import Role
from models.base import utcnow
from models.referral import Referral
from models.returnee import Returnee
from models.ussd import UssdSession, UssdStep
from tests.test_admin_access import login, make_user
from tests.test_admin_referrals import referral_for, seeded, signed_in  # noqa: F401


def test_the_header_counts_referrals_at_the_desk_or_past_their_deadline(seeded: Flask, db: Session) -> None:  # noqa: F811
    client = signed_in(seeded, db, Role.VIEWER)
    assert "À traiter : 0" in client.get("/admin/referrals").text
    referral_for(seeded, db, category="psychosocial", region="kidal")  # reaches the desk at once
    late = referral_for(seeded, db, "+22370000102")
    on_time = referral_for(seeded, db, "+22370000103", category="legal")
    db.get(Referral, late.id).assigned_at = utcnow() - timedelta(hours=30)
    db.commit()
    page = html.unescape(client.get("/admin/dashboard").text)
    assert "À traiter : 2" in page and 'href="/admin/referrals?overdue=1"' in page
    listing = client.get("/admin/referrals?overdue=1").text
    assert late.code in listing and on_time.code not in listing
    focal = signed_in(seeded, db, Role.PROVIDER, late.provider_id)
    assert "À traiter" not in focal.get("/admin/referrals").text


def test_the_header_count_stops_at_its_cap_and_says_so(
    seeded: Flask,  # noqa: F811
    db: Session,
    monkeypatch,
) -> None:
    """Counting thousands of waiting referrals on every page is what the cap avoids: past it, the
    header says "N+" and the list still shows them all."""
    monkeypatch.setattr("web.admin.dashboard.TO_HANDLE_COUNTED", 1)
    client = signed_in(seeded, db, Role.COORDINATOR)
    referral_for(seeded, db, category="psychosocial", region="kidal")  # reaches the desk at once
    assert "À traiter : 1<" in html.unescape(client.get("/admin/referrals").text)
    second = referral_for(seeded, db, "+22370000102", category="psychosocial", region="kidal")
    page = html.unescape(client.get("/admin/referrals").text)
    assert "À traiter : 1+<" in page
    assert second.code in client.get("/admin/referrals?overdue=1").text


def test_referrals_returnees_and_sessions_link_to_each_other(seeded: Flask, db: Session) -> None:  # noqa: F811
    referral = referral_for(seeded, db)
    returnee_id = referral.returnee_id
    phone_hash = db.get(Returnee, returnee_id).phone_hash
    db.add(UssdSession(session_id="ATUid_links", phone_hash=phone_hash, service_code="*384*7472#"))
    db.add(UssdStep(session_id="ATUid_links", seq=0, user_input="", screen="CON Sira", server_ms=1.0))
    db.commit()
    client = signed_in(seeded, db, Role.COORDINATOR)
    assert f'href="/admin/returnees/{returnee_id}"' in client.get(f"/admin/referrals/{referral.code}").text
    profile = client.get(f"/admin/returnees/{returnee_id}").text
    assert f'href="/admin/ussd/sessions?ph={phone_hash}"' in profile
    assert (
        'href="/admin/ussd/sessions/ATUid_links"' in profile
        and f"/admin/referrals/{referral.code}" in profile
    )
    transcript = client.get("/admin/ussd/sessions/ATUid_links").text
    assert f'href="/admin/returnees/{returnee_id}"' in transcript
    assert f'href="/admin/referrals/{referral.code}"' in transcript
    viewer = signed_in(seeded, db, Role.VIEWER)  # viewers do not filter sessions by number
    assert "ph=" not in viewer.get(f"/admin/returnees/{returnee_id}").text


def test_the_sessions_list_shows_when_each_session_ended_and_the_transcript_tells_dial_from_empty_answer(
    app: Flask, db: Session
) -> None:
    start = utcnow() - timedelta(minutes=5)
    db.add(
        UssdSession(session_id="ATUid_cut", phone_hash="0" * 64, service_code="*384*7472#", started_at=start)
    )
    db.add_all(
        [
            UssdStep(session_id="ATUid_cut", seq=0, user_input="", screen="CON Menu", server_ms=1.0, at=start),
            UssdStep(session_id="ATUid_cut", seq=1, user_input="", screen="CON Menu", server_ms=1.0,
                     at=start + timedelta(seconds=42)),
        ]
    )  # fmt: skip
    db.commit()
    make_user(db, "admin@example.org")
    client = login(app.test_client(), "admin@example.org")
    listing = client.get("/admin/ussd/sessions").text
    assert (start + timedelta(seconds=42)).strftime("%d/%m/%Y %H:%M:%S") in listing
    transcript = client.get("/admin/ussd/sessions/ATUid_cut").text
    assert transcript.count("(appel)") == 1 and transcript.count("(réponse vide)") == 1


def test_the_queues_page_shows_each_workers_last_heartbeat_and_flags_a_silent_one(
    app: Flask, db: Session, redis: Redis
) -> None:
    make_user(db, "admin@example.org")
    client = login(app.test_client(), "admin@example.org")
    assert "Aucun worker ne tourne" in html.unescape(client.get("/admin/queues").text)
    alive = Worker([Queue(queues.SMS, connection=redis)], connection=redis, name="alive-worker")
    alive.register_birth()
    alive.heartbeat()
    silent = Worker([Queue(queues.DEFAULT, connection=redis)], connection=redis, name="silent-worker")
    silent.register_birth()
    long_ago = utcnow() - timedelta(seconds=silent.worker_ttl + 600)
    redis.hset(silent.key, "last_heartbeat", long_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    page = html.unescape(client.get("/admin/queues").text)
    rows = {
        name: page[page.index(name) : page.index("</tr>", page.index(name))]
        for name in ("alive-worker", "silent-worker")
    }
    assert "Dernier signe de vie" in page and "Aucun worker ne tourne" not in page
    assert "il y a " in rows["alive-worker"] and "aucun signe de vie" not in rows["alive-worker"]
    assert (
        long_ago.strftime("%d/%m/%Y %H:%M") in rows["silent-worker"]
        and "aucun signe de vie" in rows["silent-worker"]
    )


def test_the_favicon_is_served(app: Flask) -> None:
    response = app.test_client().get("/favicon.ico")
    assert response.status_code == 200 and response.mimetype == "image/vnd.microsoft.icon"
    assert response.data[:4] == b"\x00\x00\x01\x00"
