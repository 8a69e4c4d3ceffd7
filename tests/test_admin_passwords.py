"""Admin passwords: 12 characters and none a common list holds, changed by their owner, reset by a link once."""

from __future__ import annotations

import hashlib
import html
import re
import time

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.keys import admin_password_reset
from models.admin import AuditEntry, Role, User
from tests.test_admin_access import PASSWORD, csrf_of, login, make_user, token

NEW = "sahel river 41 mango"
SHORT = "Le mot de passe est trop court : au moins 12 caractères."
GUESSABLE = "Ce mot de passe est trop courant ou trop facile à deviner"
DIFFER = "Les deux nouveaux mots de passe ne sont pas identiques."
WEAK = (("aaaaaaaaaa", SHORT), ("aaaaaaaaaaaa", GUESSABLE), ("short", SHORT), ("password1234", GUESSABLE),
        ("iloveyou2020", GUESSABLE), ("qwertyuiop12", GUESSABLE))  # fmt: skip


def actions(db: Session, action: str) -> list[AuditEntry]:
    db.expire_all()
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def hash_of(db: Session, email: str) -> str:
    db.expire_all()
    return db.scalar(select(User.password_hash).where(User.email == email))


@pytest.mark.parametrize(("password", "message"), WEAK)
def test_a_new_account_refuses_a_short_or_common_password_and_saves_nothing(
    client: FlaskClient, db: Session, password: str, message: str
) -> None:
    make_user(db, "admin@example.org")
    login(client, "admin@example.org")
    page = client.post("/admin/users/new", data={"email": "new@example.org", "role": "viewer",
                                                  "password": password, "csrf_token": token(client)})  # fmt: skip
    assert page.status_code == 400 and message in html.unescape(page.text)
    assert db.scalar(select(User).where(User.email == "new@example.org")) is None


def test_the_email_itself_is_no_password(client: FlaskClient, db: Session) -> None:
    make_user(db, "admin@example.org")
    login(client, "admin@example.org")
    page = client.post("/admin/users/new", data={"email": "kadiatou.sangare@cnrm.ml", "role": "viewer",
                                                  "password": "kadiatou.sangare@cnrm.ml", "csrf_token": token(client)})  # fmt: skip
    assert page.status_code == 400 and GUESSABLE in html.unescape(page.text)


@pytest.mark.parametrize(
    ("password", "said"), [("aaaaaaaaaa", "at least 12"), ("password1234", "too common")]
)
def test_create_user_on_the_command_line_applies_the_same_policy(
    app: Flask, db: Session, password: str, said: str
) -> None:
    result = app.test_cli_runner().invoke(args=["create-user", "a@example.org", "--role", "admin",
                                                "--password", password])  # fmt: skip
    assert result.exit_code == 1 and said in result.output
    assert db.scalar(select(User)) is None


def change(client: FlaskClient, current: str, new: str, again: str | None = None) -> object:
    data = {
        "current_password": current,
        "new_password": new,
        "new_password2": new if again is None else again,
    }
    return client.post(
        "/admin/account/password", data={**data, "csrf_token": token(client, "/admin/account/password")}
    )


def test_a_user_changes_their_own_password_and_their_other_sessions_end(app: Flask, db: Session) -> None:
    make_user(db, "coord@example.org", Role.COORDINATOR)
    here, elsewhere = (
        login(app.test_client(), "coord@example.org"),
        login(app.test_client(), "coord@example.org"),
    )
    before = hash_of(db, "coord@example.org")
    for current, new, again, message in (
        ("wrong password here", NEW, NEW, "Le mot de passe actuel est faux."),
        (PASSWORD, NEW, NEW + "x", DIFFER),
        (PASSWORD, "aaaaaaaaaaaa", "aaaaaaaaaaaa", GUESSABLE),
        (PASSWORD, "short", "short", SHORT),
    ):
        page = change(here, current, new, again)
        assert page.status_code == 400 and message in html.unescape(page.text)
        assert hash_of(db, "coord@example.org") == before
    done = change(here, PASSWORD, NEW)
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/account/password?done=1")
    assert here.get("/admin/referrals").status_code == 200  # this one goes on, in a new session
    assert elsewhere.get("/admin/referrals").status_code == 302  # the other one has ended
    fresh = app.test_client()
    login(fresh, "coord@example.org", NEW)
    [entry] = [e for e in actions(db, "user.password.change") if e.detail.get("changed")]
    assert entry.detail["sessions_ended"] == 2
    # a wrong current password is audited too (someone at an unlocked screen); a typo in the new one is not
    assert [e.detail["changed"] for e in actions(db, "user.password.change")] == [False, True]


def make_link(app: Flask, db: Session) -> tuple[FlaskClient, User, str]:
    make_user(db, "admin@example.org")
    target = make_user(db, "focal@example.org", Role.VIEWER)
    admin = login(app.test_client(), "admin@example.org")
    page = admin.post(
        f"/admin/users/{target.id}/password-reset", data={"csrf_token": token(admin, "/admin/users")}
    )
    assert page.status_code == 200
    link = re.search(r"http://[^/]+(/admin/password-reset/[A-Za-z0-9_-]+)", page.text).group(1)
    return admin, target, link


def use_link(client: FlaskClient, link: str, new: str = NEW, again: str | None = None) -> object:
    form = client.get(link)
    if form.status_code != 200:
        return form
    data = {
        "new_password": new,
        "new_password2": new if again is None else again,
        "csrf_token": csrf_of(form.text),
    }
    return client.post(link, data=data)


def test_a_reset_link_works_once_and_ends_the_users_sessions(app: Flask, db: Session, redis: Redis) -> None:
    admin, target, link = make_link(app, db)
    token_part = link.rsplit("/", 1)[1]
    assert redis.get(admin_password_reset(token_part)) is None  # the token itself is not the key
    key = admin_password_reset(hashlib.sha256(token_part.encode()).hexdigest())
    assert 29 * 60 < redis.ttl(key) <= 30 * 60
    old_session = login(app.test_client(), "focal@example.org")
    stranger = app.test_client()
    before = hash_of(db, "focal@example.org")
    refused = use_link(stranger, link, "aaaaaaaaaaaa")
    assert refused.status_code == 400 and GUESSABLE in html.unescape(refused.text)
    refused = use_link(stranger, link, NEW, NEW + "!")
    assert refused.status_code == 400 and DIFFER in html.unescape(refused.text)
    assert hash_of(db, "focal@example.org") == before and redis.exists(key)
    done = use_link(stranger, link)
    assert done.status_code == 200 and "Votre mot de passe est changé" in html.unescape(done.text)
    assert old_session.get("/admin/referrals").status_code == 302
    login(app.test_client(), "focal@example.org", NEW)
    again = use_link(app.test_client(), link, "another long passphrase 7")
    assert again.status_code == 410
    login(app.test_client(), "focal@example.org", NEW)
    [made] = actions(db, "user.password.reset_link")
    [reset] = actions(db, "user.password.reset")
    assert made.object_id == reset.object_id == str(target.id) and made.detail["minutes"] == 30
    assert reset.user_id == target.id and reset.detail["sessions_ended"] == 1
    audit_page = html.unescape(admin.get("/admin/audit").text)
    for shown in (
        "lien de réinitialisation créé",
        "mot de passe réinitialisé par lien",
        "minutes de validité",
    ):
        assert shown in audit_page


def test_a_reset_link_expires(app: Flask, db: Session, redis: Redis) -> None:
    _admin, _target, link = make_link(app, db)
    stranger = app.test_client()
    form = stranger.get(link)
    assert form.status_code == 200
    key = admin_password_reset(hashlib.sha256(link.rsplit("/", 1)[1].encode()).hexdigest())
    redis.pexpire(key, 1)  # Redis ends it, as at the end of PASSWORD_RESET_MINUTES
    time.sleep(0.05)
    late = stranger.post(
        link, data={"new_password": NEW, "new_password2": NEW, "csrf_token": csrf_of(form.text)}
    )
    assert late.status_code == 410
    assert stranger.get(link).status_code == 410
    assert app.test_client().get("/admin/password-reset/made-up-token").status_code == 410
    login(app.test_client(), "focal@example.org")  # the old password still works


def test_only_admins_make_reset_links(app: Flask, db: Session) -> None:
    target = make_user(db, "focal@example.org", Role.VIEWER)
    make_user(db, "coord@example.org", Role.COORDINATOR)
    coord = login(app.test_client(), "coord@example.org")
    refused = coord.post(f"/admin/users/{target.id}/password-reset", data={"csrf_token": token(coord)})
    assert refused.status_code == 403
    assert actions(db, "user.password.reset_link") == []
