"""Login throttling: growing delays per source, no lock-out a stranger can cause, capped argon2."""

from __future__ import annotations

import re
import threading

import requests
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from app import create_app
from tests.conftest import LiveServer, app_settings
from tests.test_admin_access import LOGIN_FAILED, PASSWORD, csrf_of, make_user
from web.context import sira

STRANGER = {"REMOTE_ADDR": "203.0.113.9"}
OWNER = {"REMOTE_ADDR": "198.51.100.7"}


def attempt(client: FlaskClient, email: str, password: str, source: dict[str, str]):
    page = client.get("/admin/login", environ_base=source)
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        environ_base=source,
    )


def test_a_stranger_who_knows_the_email_cannot_lock_its_owner_out(app: Flask, db: Session) -> None:
    user = make_user(db, "admin@example.org")
    stranger, owner = app.test_client(), app.test_client()
    answers = [attempt(stranger, user.email, "guess", STRANGER).status_code for _ in range(12)]
    assert answers[:3] == [200, 200, 200] and 429 in answers
    signed_in = attempt(owner, user.email, PASSWORD, OWNER)
    assert signed_in.status_code == 302, signed_in.text
    assert owner.get("/admin/referrals", environ_base=OWNER).status_code == 200


def test_failures_from_one_address_bring_growing_delays_and_no_password_check(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db, "admin@example.org")
    for _ in range(3):  # free failures
        assert LOGIN_FAILED in attempt(client, user.email, "guess", STRANGER).text
    assert attempt(client, user.email, "guess", STRANGER).status_code == 200  # the fourth is counted
    waiting = attempt(client, user.email, PASSWORD, STRANGER)  # even the right password waits
    assert waiting.status_code == 429 and 1 <= int(waiting.headers["Retry-After"]) <= 2
    assert "Trop de tentatives" in waiting.text
    other_account = attempt(client, "someone@example.org", "guess", STRANGER)
    assert other_account.status_code == 429  # the address is throttled, whatever the account
    throttle = sira(client.application).login_throttle
    for _ in range(3):
        throttle.failed(STRANGER["REMOTE_ADDR"], user.email)  # three more failures, later on
    assert int(attempt(client, user.email, "guess", STRANGER).headers["Retry-After"]) > 8


def test_throttle_keys_hold_neither_the_address_nor_the_email(client: FlaskClient, db: Session, redis: Redis):
    make_user(db, "admin@example.org")
    attempt(client, "admin@example.org", "guess", STRANGER)
    dump = b" ".join(redis.keys("*")) + b" ".join(
        b" ".join(redis.hvals(k)) for k in redis.keys("admin:login-failures:*")
    )
    assert b"203.0.113.9" not in dump and b"admin@example.org" not in dump
    assert redis.keys("admin:login-failures:*")


def test_at_most_n_password_checks_at_once_the_rest_get_a_polite_503(
    database_url: str, redis: Redis, db: Session
) -> None:
    app = create_app(app_settings(database_url, password_checks=1, password_check_wait_seconds=0.05))
    app.config["ADMIN_COOKIE_SECURE"] = False
    with sira(app).sessions() as session:
        make_user(session, "admin@example.org")
    clients = 8
    barrier, answers = threading.Barrier(clients), []
    with LiveServer(app) as server:

        def sign_in() -> None:
            http = requests.Session()
            http.trust_env = False
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', http.get(server.url + "/admin/login").text)
            barrier.wait(10)
            response = http.post(server.url + "/admin/login", allow_redirects=False, timeout=30,
                                 data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": csrf[1]})  # fmt: skip
            answers.append((response.status_code, response.headers.get("Retry-After")))

        threads = [threading.Thread(target=sign_in) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    statuses = [status for status, _ in answers]
    assert statuses.count(302) >= 1 and statuses.count(503) >= 1, answers
    assert set(statuses) <= {302, 503}, answers
    assert all(retry == "5" for status, retry in answers if status == 503), answers
