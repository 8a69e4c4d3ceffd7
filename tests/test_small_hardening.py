"""Smaller hardening: what an anonymous visitor may cost us, and ids the admin must still open."""

from __future__ import annotations

import html
import re

from flask import Flask
from redis import Redis
from sqlalchemy.orm import Session

from models.admin import Role
from tests.conftest import flush_transcripts
from tests.test_admin_access import PASSWORD, csrf_of, make_user
from tests.test_admin_referrals import signed_in
from tests.test_admin_ussd_sms import GOOD


def test_a_session_id_holding_slashes_opens_from_the_session_list(
    app: Flask, db: Session, redis: Redis, database_url: str
) -> None:
    session_id = "ATUid/2024/ab.cd"
    ussd = app.test_client()
    replies = [ussd.post("/ussd", data={**GOOD, "sessionId": session_id, "text": t}).text for t in ("", "9")]
    flush_transcripts(database_url)
    client = signed_in(app, db, Role.COORDINATOR)
    listing = client.get("/admin/ussd/sessions").text
    [link] = re.findall(r'href="(/admin/ussd/sessions/[^"?]+)"', listing)
    page = client.get(html.unescape(link))
    assert page.status_code == 200, link
    assert f'<pre class="screen">{html.escape(replies[1][4:])}</pre>' in page.text


def test_an_anonymous_login_page_stores_nothing_until_someone_signs_in(
    app: Flask, db: Session, redis: Redis
) -> None:
    make_user(db, "admin@example.org")
    for _ in range(5):  # five visitors, or one script asking five times
        assert app.test_client().get("/admin/login").status_code == 200
    assert redis.keys("admin:session:*") == []
    client = app.test_client()
    csrf = csrf_of(client.get("/admin/login").text)
    switched = client.post("/admin/language", data={"lang": "en", "next": "/admin/login", "csrf_token": csrf})
    assert switched.status_code == 302  # the form's token works without a stored session
    assert client.post("/admin/login", data={"email": "admin@example.org", "password": PASSWORD,
                                             "csrf_token": "forged"}).status_code == 400  # fmt: skip
    csrf = csrf_of(client.get("/admin/login").text)
    signed = client.post(
        "/admin/login", data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": csrf}
    )
    assert signed.status_code == 302
    assert len(redis.keys("admin:session:*")) == 1
    assert client.get("/admin/referrals").status_code == 200
    other = app.test_client()  # another browser's token is not this one's
    assert other.post("/admin/login", data={"email": "admin@example.org", "password": PASSWORD,
                                            "csrf_token": csrf}).status_code == 400  # fmt: skip
