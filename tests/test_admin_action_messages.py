"""Every admin action says what it did, and did it: the notice on the page it lands on, and the
change in the database (re-routes that find no one: tests/test_admin_reroute.py)."""

from __future__ import annotations

import html
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import Role, User
from models.base import utcnow
from models.directory import Provider
from models.referral import Referral, Status
from tests.test_admin_access import token
from tests.test_admin_referrals import provider, referral_for, seeded, signed_in  # noqa: F401


def notice(client: FlaskClient, response) -> str:
    """The status line of the page an action redirected to."""
    assert response.status_code == 302, response.text
    page = html.unescape(client.get(response.headers["Location"]).text)
    start = page.index('<p class="notice" role="status">') + len('<p class="notice" role="status">')
    return page[start : page.index("</p>", start)]


def test_referral_actions_say_what_they_did(seeded: Flask, db: Session) -> None:  # noqa: F811
    referral = referral_for(seeded, db)
    anpe = provider(db, "anpe")
    client = signed_in(seeded, db, Role.COORDINATOR)
    url = f"/admin/referrals/{referral.code}"
    moved = client.post(f"{url}/reroute", data={"provider_id": str(anpe.id), "csrf_token": token(client)})
    assert notice(client, moved) == "Orientation réorientée."
    db.expire_all()
    assert db.get(Referral, referral.id).provider_id == anpe.id
    noted = client.post(f"{url}/note", data={"note": "rappel demain", "csrf_token": token(client)})
    assert notice(client, noted) == "Note ajoutée."
    db.expire_all()
    assert db.get(Referral, referral.id).events[-1].note == "rappel demain"
    cancelled = client.post(f"{url}/cancel", data={"reason": "doublon", "csrf_token": token(client)})
    assert notice(client, cancelled) == "Orientation annulée."
    db.expire_all()
    assert db.get(Referral, referral.id).status == Status.CANCELLED


def test_a_focal_points_answers_say_what_they_did(seeded: Flask, db: Session) -> None:  # noqa: F811
    first = referral_for(seeded, db, category="psychosocial", region="gao")  # csref-gao alone there
    second = referral_for(seeded, db, "+22370000102", category="psychosocial", region="gao")
    third = referral_for(seeded, db, "+22370000103", category="jobs")
    assert first.provider_id == second.provider_id
    client = signed_in(seeded, db, Role.PROVIDER, first.provider_id)
    accepted = client.post(f"/admin/referrals/{first.code}/accept", data={"csrf_token": token(client)})
    assert notice(client, accepted) == "Orientation acceptée : la personne attend votre appel."
    closed = client.post(f"/admin/referrals/{first.code}/close", data={"csrf_token": token(client)})
    assert notice(client, closed).startswith("Orientation clôturée : on demandera à la personne")
    declined = client.post(f"/admin/referrals/{second.code}/decline", data={"csrf_token": token(client)})
    assert notice(client, declined) == (
        "Orientation refusée : aucun autre prestataire ne la prend ici, la coordination s'en charge."
    )
    holder = third.provider_id
    other = signed_in(seeded, db, Role.PROVIDER, holder)
    passed_on = other.post(f"/admin/referrals/{third.code}/decline", data={"csrf_token": token(other)})
    assert notice(other, passed_on) == "Orientation refusée : elle part vers un autre prestataire."
    db.expire_all()
    assert db.get(Referral, first.id).status == Status.CLOSED
    assert (db.get(Referral, second.id).status, db.get(Referral, second.id).provider_id) == (
        Status.DECLINED,
        None,
    )
    assert db.get(Referral, third.id).provider_id not in (None, holder)


def test_provider_actions_say_what_they_did(seeded: Flask, db: Session) -> None:  # noqa: F811
    client = signed_in(seeded, db, Role.ADMIN)
    form = {"name": "Centre d'écoute de Kati", "kind": "health centre", "capacity": "5", "language": "fr",
            "categories": ["psychosocial"], "regions": ["koulikoro"], "numbers": "+223 70 00 00 77"}  # fmt: skip
    created = client.post("/admin/providers/new", data={**form, "csrf_token": token(client)})
    assert notice(client, created) == "Prestataire créé."
    made = db.scalar(select(Provider).where(Provider.name == form["name"]))
    assert made is not None and made.active
    saved = client.post(
        f"/admin/providers/{made.id}/edit", data={**form, "capacity": "8", "csrf_token": token(client)}
    )
    assert notice(client, saved) == "Prestataire enregistré."
    off = client.post(f"/admin/providers/{made.id}/active", data={"active": "0", "csrf_token": token(client)})
    assert notice(client, off) == "Prestataire désactivé : il ne reçoit plus de nouvelles orientations."
    db.expire_all()
    assert (db.get(Provider, made.id).daily_capacity, db.get(Provider, made.id).active) == (8, False)
    on = client.post(f"/admin/providers/{made.id}/active", data={"active": "1", "csrf_token": token(client)})
    assert notice(client, on) == "Prestataire réactivé."
    db.expire_all()
    assert db.get(Provider, made.id).active


def test_user_actions_say_what_they_did(seeded: Flask, db: Session) -> None:  # noqa: F811
    client = signed_in(seeded, db, Role.ADMIN)
    created = client.post(
        "/admin/users/new",
        data={"email": "new@example.org", "password": "a long enough password", "role": "viewer",
              "csrf_token": token(client)},
    )  # fmt: skip
    assert created.status_code in (200, 302)
    other = db.scalar(select(User).where(User.email == "new@example.org"))
    assert other is not None and other.role == Role.VIEWER
    changed = client.post(
        f"/admin/users/{other.id}/role", data={"role": "coordinator", "csrf_token": token(client)}
    )
    assert notice(client, changed) == "Rôle modifié."
    off = client.post(f"/admin/users/{other.id}/active", data={"active": "0", "csrf_token": token(client)})
    assert notice(client, off).startswith("Utilisateur désactivé")
    on = client.post(f"/admin/users/{other.id}/active", data={"active": "1", "csrf_token": token(client)})
    assert notice(client, on) == "Utilisateur réactivé."
    db.expire_all()
    locked = db.get(User, other.id)
    assert (locked.role, locked.active) == (Role.COORDINATOR, True)
    locked.locked_until = utcnow() + timedelta(minutes=10)
    db.commit()
    unlocked = client.post(f"/admin/users/{other.id}/unlock", data={"csrf_token": token(client)})
    assert notice(client, unlocked) == "Utilisateur débloqué."
    db.expire_all()
    assert db.get(User, other.id).locked_until is None
