"""Each SMS route's health, failure rate and cost on the SMS log and the Queues page (fr and en)."""

from __future__ import annotations

import html

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy.orm import Session

from app import create_app
from config import load_settings
from gateway import RouteHealth
from models import OutboundSms, SmsStatus
from models.admin import Role
from models.base import utcnow
from tests.conftest import ORANGE_SENDER, app_settings
from tests.test_admin_i18n import csrf_of
from tests.test_admin_referrals import signed_in
from web.admin.routes import route_rows

ROUTES = "at=africastalking; orange=orange?cost=XOF 20"


@pytest.fixture
def app(database_url: str, redis: Redis) -> Flask:
    return create_app(app_settings(database_url, sms_routes=ROUTES, sms_route_failures=2))


def routes_table(page: str) -> str:
    start = page.index('<table class="routes">')
    return page[start : page.index("</table>", start)]


@pytest.fixture
def traffic(db: Session, redis: Redis) -> None:
    """AT took two messages it billed, then failed twice in a row (so it is skipped); Orange, which
    bills nothing per message, took one of three parts and failed once."""
    health = RouteHealth(failures_allowed=2, cooldown_seconds=60)
    for _ in range(2):
        health.succeeded(redis, "at")
    health.failed(redis, "at")
    health.failed(redis, "at")
    health.failed(redis, "orange")
    health.succeeded(redis, "orange")
    now = utcnow()
    db.add_all(
        [
            OutboundSms(
                to_e164="+22370000001",
                to_hash="a" * 64,
                body="x",
                purpose="test",
                route=route,
                status=SmsStatus.ACCEPTED,
                accepted_at=now,
                cost=cost,
                segments=parts,
                gateway_id=f"{route}-{i}",
            )
            for i, (route, cost, parts) in enumerate(
                [("at", "XOF 25.0000", 1), ("at", "XOF 25.0000", 1), ("orange", None, 3)]
            )
        ]
    )
    db.commit()


def test_the_queues_page_shows_each_route_s_health_failure_rate_and_cost(
    app: Flask, db: Session, traffic: None
) -> None:
    client = signed_in(app, db, Role.COORDINATOR)
    table = html.unescape(routes_table(client.get("/admin/queues").text))
    at, orange = table.split('<tr class="route-')[1:]
    assert at.startswith("down") and "en panne" in at and "50 %" in at and "XOF 50.00" in at
    assert orange.startswith("up") and "en service" in orange and "50 %" in orange and "XOF 60.00" in orange
    page = client.get("/admin/queues")
    client.post(
        "/admin/language", data={"lang": "en", "next": "/admin/queues", "csrf_token": csrf_of(page.text)}
    )
    english = html.unescape(routes_table(client.get("/admin/queues").text))
    assert "down: skipped until its cool-down ends" in english and "Failure rate (24 h)" in english


def test_the_sms_log_shows_the_routes_and_which_route_took_each_message(
    app: Flask, db: Session, traffic: None
) -> None:
    page = html.unescape(signed_in(app, db, Role.COORDINATOR).get("/admin/sms").text)
    assert "Routes SMS" in page and "XOF 60.00" in routes_table(page)
    rows = page[page.index("<tbody>", page.index("</table>")) :]
    assert rows.count("<small>(orange)</small>") == 1 and rows.count("<small>(at)</small>") == 2


def test_without_redis_the_routes_read_unknown_and_their_costs_still_show(db: Session, traffic: None) -> None:
    settings = load_settings({"ORANGE_SENDER_ADDRESS": ORANGE_SENDER}, sms_routes=ROUTES)
    with Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2) as dead:
        rows = route_rows(settings, dead, db)
    assert [(r.name, r.health, r.sent, r.cost) for r in rows] == [
        ("at", "unknown", None, "XOF 50.00"),
        ("orange", "unknown", None, "XOF 60.00"),
    ]


def test_one_route_of_sms_gateway_is_shown_when_no_routes_are_configured() -> None:
    assert [r.name for r in load_settings({}).routing.routes] == ["africastalking"]
