"""Admin accounts: created with a password shown once, roles changed, disabled at once, unlocked."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role, User
from models.base import utcnow
from tests import test_admin_referrals
from tests.test_admin_access import PASSWORD, login, make_user, token
from tests.test_admin_referrals import provider, signed_in

seeded = test_admin_referrals.seeded  # the seeded directory, a fixture


def post(client: FlaskClient, path: str, form: dict) -> object:
    return client.post(path, data={**form, "csrf_token": token(client, "/admin/users")})


def audited(db: Session, action: str) -> AuditEntry:
    return db.scalar(select(AuditEntry).where(AuditEntry.action == action))


def test_an_admin_creates_a_focal_point_with_a_generated_password_shown_once(
    seeded: Flask, db: Session
) -> None:
    admin = signed_in(seeded, db, Role.ADMIN)
    apej = provider(db, "apej")
    created = post(admin, "/admin/users/new", {"email": " Focal@Apej.ml ", "role": "provider",
                                               "provider_id": str(apej.id), "password": ""})  # fmt: skip
    assert created.status_code == 200
    password = html.unescape(re.search(r'<code class="secret">([^<]+)</code>', created.text).group(1))
    assert len(password) >= 12
    user = db.scalar(select(User).where(User.email == "focal@apej.ml"))
    assert (user.role, user.provider_id, user.active) == ("provider", apej.id, True)
    assert password not in user.password_hash and user.password_matches(password)
    assert password not in admin.get("/admin/users").text  # shown once
    entry = audited(db, "user.create")
    assert entry.detail == {"role": "provider", "provider_id": apej.id, "generated_password": True}
    assert password not in str(entry.detail)
    focal = login(seeded.test_client(), "focal@apej.ml", password)
    assert focal.get("/admin/referrals").status_code == 200


def test_creation_refuses_bad_input_and_saves_nothing(seeded: Flask, db: Session) -> None:
    admin = signed_in(seeded, db, Role.ADMIN)
    for form, message in (
        ({"email": "not-an-email", "role": "viewer"}, "Saisissez une adresse électronique valide."),
        ({"email": "admin@example.org", "role": "viewer"}, "Cette adresse a déjà un compte."),
        ({"email": "new@example.org", "role": "king"}, "Choisissez un rôle."),
        ({"email": "new@example.org", "role": "provider"}, "Un point focal doit être rattaché"),
        (
            {"email": "new@example.org", "role": "viewer", "password": "short"},
            "Le mot de passe est trop court : au moins 12 caractères.",
        ),
    ):
        page = post(admin, "/admin/users/new", form)
        assert page.status_code == 400 and message in html.unescape(page.text), form
    assert db.scalar(select(User).where(User.email == "new@example.org")) is None
    chosen = post(admin, "/admin/users/new", {"email": "new@example.org", "role": "coordinator",
                                             "provider_id": "1", "password": PASSWORD})  # fmt: skip
    assert chosen.status_code == 302
    user = db.scalar(select(User).where(User.email == "new@example.org"))
    assert (user.role, user.provider_id) == ("coordinator", None)  # a provider only for focal points


def test_disabling_ends_the_users_sessions_at_once_and_enabling_lets_them_back(
    seeded: Flask, db: Session, redis: Redis
) -> None:
    admin = signed_in(seeded, db, Role.ADMIN)
    coordinator = signed_in(seeded, db, Role.COORDINATOR)
    other_browser = login(seeded.test_client(), "coordinator@example.org")
    user = db.scalar(select(User).where(User.email == "coordinator@example.org"))
    assert coordinator.get("/admin/referrals").status_code == 200
    assert redis.scard(f"admin:user-sessions:{user.id}") == 2
    response = post(admin, f"/admin/users/{user.id}/active", {"active": "0"})
    assert response.status_code == 302
    assert not redis.exists(f"admin:user-sessions:{user.id}")
    for browser in (coordinator, other_browser):
        assert browser.get("/admin/referrals").headers["Location"].startswith("/admin/login")
    assert audited(db, "user.disable").detail == {"sessions_ended": 2}
    post(admin, f"/admin/users/{user.id}/active", {"active": "1"})
    assert audited(db, "user.enable").object_id == str(user.id)
    assert login(seeded.test_client(), "coordinator@example.org").get("/admin/referrals").status_code == 200


def test_an_admin_cannot_disable_or_demote_themselves(seeded: Flask, db: Session) -> None:
    admin = signed_in(seeded, db, Role.ADMIN)
    me = db.scalar(select(User).where(User.email == "admin@example.org"))
    for path, form in ((f"/admin/users/{me.id}/active", {"active": "0"}),
                       (f"/admin/users/{me.id}/role", {"role": "viewer"})):  # fmt: skip
        refused = post(admin, path, form)
        assert refused.status_code == 409
        assert "Vous ne pouvez ni vous désactiver" in html.unescape(refused.text)
    db.expire_all()
    me = db.get(User, me.id)
    assert (me.role, me.active) == ("admin", True)
    assert admin.get("/admin/users").status_code == 200


def test_roles_change_with_their_provider_and_locked_accounts_unlock(seeded: Flask, db: Session) -> None:
    admin = signed_in(seeded, db, Role.ADMIN)
    user = make_user(db, "someone@example.org", Role.VIEWER)
    apej = provider(db, "apej")
    assert post(admin, f"/admin/users/{user.id}/role", {"role": "provider"}).status_code == 400
    assert post(admin, f"/admin/users/{user.id}/role",
                {"role": "provider", "provider_id": str(apej.id)}).status_code == 302  # fmt: skip
    db.expire_all()
    assert (db.get(User, user.id).role, db.get(User, user.id).provider_id) == ("provider", apej.id)
    assert audited(db, "user.role").detail == {
        "before": "viewer",
        "after": "provider",
        "provider_id": apej.id,
    }
    post(admin, f"/admin/users/{user.id}/role", {"role": "coordinator", "provider_id": str(apej.id)})
    db.expire_all()
    assert (db.get(User, user.id).role, db.get(User, user.id).provider_id) == ("coordinator", None)

    locked = db.get(User, user.id)
    locked.locked_until, locked.failed_logins = utcnow() + timedelta(minutes=10), 3
    db.commit()
    assert "Débloquer" in admin.get("/admin/users").text
    assert post(admin, f"/admin/users/{user.id}/unlock", {}).status_code == 302
    db.expire_all()
    assert (db.get(User, user.id).locked_until, db.get(User, user.id).failed_logins) == (None, 0)
    assert audited(db, "user.unlock").object_id == str(user.id)
    assert post(admin, "/admin/users/999999/unlock", {}).status_code == 404


def test_only_admins_manage_users(seeded: Flask, db: Session) -> None:
    target = make_user(db, "target@example.org", Role.VIEWER)
    for role in (Role.COORDINATOR, Role.VIEWER):
        client = signed_in(seeded, db, role)
        assert client.get("/admin/users").status_code == 403
        assert client.get("/admin/users/new").status_code == 403
        csrf = token(client)
        for path in (f"/admin/users/{target.id}/active", f"/admin/users/{target.id}/role",
                     f"/admin/users/{target.id}/unlock", "/admin/users/new"):  # fmt: skip
            assert (
                client.post(path, data={"active": "0", "role": "admin", "csrf_token": csrf}).status_code
                == 403
            )
    db.expire_all()
    assert (db.get(User, target.id).role, db.get(User, target.id).active) == ("viewer", True)
