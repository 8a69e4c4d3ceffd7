"""Admin access: login, lock-out, CSRF, server-side sessions and their time-outs, headers, roles."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role, User
from web.admin.access import COOKIE

LOGIN_FAILED = "Email ou mot de passe incorrect."  # the French page, French being the default

PASSWORD = "correct horse battery"


def make_user(db: Session, email: str, role: Role = Role.ADMIN, provider_id: int | None = None) -> User:
    user = User(email=email, role=role, provider_id=provider_id)
    user.set_password(PASSWORD)
    db.add(user)
    db.commit()
    return user


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def login_page(client: FlaskClient) -> str:
    response = client.get("/admin/login")
    assert response.status_code == 200
    return csrf_of(response.text)


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> FlaskClient:
    response = client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": login_page(client)}
    )
    assert response.status_code == 302, response.text
    return client


def token(client: FlaskClient, path: str = "/admin/referrals") -> str:
    """The CSRF token of the signed-in session, as a page carries it."""
    return csrf_of(client.get(path).text)


def cookie(client: FlaskClient) -> str:
    return client.get_cookie(COOKIE, path="/admin").value


def test_login_with_the_right_password_renews_the_session_id(client: FlaskClient, db: Session) -> None:
    make_user(db, "admin@example.org")
    csrf = login_page(client)
    assert client.get_cookie(COOKIE, path="/admin") is None  # no session before login
    response = client.post(
        "/admin/login", data={"email": "Admin@Example.org ", "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    assert cookie(client)
    set_cookie = response.headers["Set-Cookie"]
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert client.get("/admin/referrals").status_code == 200


def test_login_goes_back_to_the_page_asked_but_never_elsewhere(client: FlaskClient, db: Session) -> None:
    make_user(db, "admin@example.org")
    assert client.get("/admin/audit").headers["Location"].startswith("/admin/login?next=")
    for target, expected in (
        ("/admin/audit?page=2", "/admin/audit?page=2"),
        ("https://evil.example/", "/admin/"),
        ("/admin//evil.example", "/admin/"),
        ("/admin/referrals/AB\nCD?", "/admin/"),  # an edited address: %0A decoded into the form
        ("/admin/x\r\nSet-Cookie: a=b", "/admin/"),
    ):
        client.delete_cookie(COOKIE, path="/admin")
        response = client.post(
            "/admin/login",
            data={"email": "admin@example.org", "password": PASSWORD, "next": target,
                  "csrf_token": login_page(client)},
        )  # fmt: skip
        assert response.headers["Location"] == expected
        assert client.get("/admin/referrals").status_code == 200
    edited = client.post(
        "/admin/language", data={"lang": "en", "next": "/admin/\n", "csrf_token": token(client)}
    )
    assert (edited.status_code, edited.headers["Location"]) == (302, "/admin/")


@pytest.mark.parametrize("email", ["admin@example.org", "nobody@example.org"])
def test_a_wrong_password_or_email_gets_one_generic_answer(
    client: FlaskClient, db: Session, email: str
) -> None:
    make_user(db, "admin@example.org")
    response = client.post(
        "/admin/login", data={"email": email, "password": "wrong", "csrf_token": login_page(client)}
    )
    assert response.status_code == 200
    assert LOGIN_FAILED in response.text
    assert client.get("/admin/referrals").status_code == 302
    assert db.scalar(select(AuditEntry.action).order_by(AuditEntry.id.desc())) == "login.failed"


def test_a_post_without_its_csrf_token_is_refused(client: FlaskClient, db: Session) -> None:
    make_user(db, "admin@example.org")
    assert (
        client.post("/admin/login", data={"email": "admin@example.org", "password": PASSWORD}).status_code
        == 400
    )
    login(client, "admin@example.org")
    assert client.post("/admin/logout").status_code == 400
    assert client.post("/admin/logout", data={"csrf_token": "forged"}).status_code == 400
    assert client.get("/admin/referrals").status_code == 200  # still signed in


def test_a_cookie_captured_before_logout_no_longer_works(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    make_user(db, "admin@example.org")
    login(client, "admin@example.org")
    captured = cookie(client)
    response = client.post("/admin/logout", data={"csrf_token": token(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    thief = app.test_client()
    thief.set_cookie(COOKIE, captured, path="/admin")
    assert thief.get("/admin/referrals").headers["Location"].startswith("/admin/login")


def test_disabling_a_user_ends_their_session_at_once(client: FlaskClient, db: Session) -> None:
    user = make_user(db, "admin@example.org")
    login(client, user.email)
    user.active = False
    db.commit()
    assert client.get("/admin/referrals").status_code == 302


def test_sessions_expire_when_idle_and_after_twelve_hours(
    client: FlaskClient, db: Session, redis: Redis
) -> None:
    make_user(db, "admin@example.org")
    login(client, "admin@example.org")
    [key] = redis.keys("admin:session:*")
    assert cookie(client) not in key.decode()  # Redis holds a hash of the id, not the id
    assert 0 < redis.ttl(key) <= 30 * 60
    redis.hset(key, "started", repr(float(redis.hget(key, "started")) - 12 * 3600 - 1))
    assert client.get("/admin/referrals").status_code == 302
    assert not redis.exists(key)


@pytest.mark.parametrize("path", ["/admin/login", "/admin/referrals", "/admin/no-such-page", "/admin/audit"])
def test_every_admin_response_carries_the_security_headers(
    client: FlaskClient, db: Session, path: str
) -> None:
    make_user(db, "admin@example.org")
    login(client, "admin@example.org")
    headers = client.get(path).headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


def test_the_other_endpoints_get_no_admin_headers(client: FlaskClient) -> None:
    assert "Content-Security-Policy" not in client.get("/healthz").headers


def test_every_admin_view_declares_its_roles(app: Flask) -> None:
    # a password reset link's page: the token in its address is the proof (tests/test_admin_passwords.py)
    open_to_all = {"admin.login", "admin.static", "admin.set_language", "admin.password_reset"}
    for endpoint, view in app.view_functions.items():
        if endpoint.startswith("admin.") and endpoint not in open_to_all:
            assert getattr(view, "admin_roles", None), endpoint


def test_the_audit_log_is_for_admins_only(app: Flask, client: FlaskClient, db: Session) -> None:
    make_user(db, "admin@example.org")
    make_user(db, "coord@example.org", Role.COORDINATOR)
    login(client, "admin@example.org")
    page = client.get("/admin/audit")
    assert page.status_code == 200 and "<td>connexion</td>" in page.text
    other = login(app.test_client(), "coord@example.org")
    assert other.get("/admin/audit").status_code == 403


def test_audit_entries_cannot_be_changed(db: Session) -> None:
    from models.admin import AppendOnly, audit

    entry = audit(db, None, "test")
    db.commit()
    entry.action = "changed"
    with pytest.raises(AppendOnly):
        db.commit()
