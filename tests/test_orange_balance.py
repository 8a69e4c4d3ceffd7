"""The Orange SMS bundle on the admin's Queues page: asked in the background, kept a few minutes,
"unknown" while Orange does not answer, and only where Orange is the gateway."""

from __future__ import annotations

import pytest
from flask import Flask
from redis import Redis

from models.admin import Role
from tests.journeys import app_with_directory, settings_for
from tests.test_admin_access import csrf_of
from tests.test_admin_referrals import signed_in
from tests.test_orange_journey import run_worker, set_faults

pytestmark = pytest.mark.usefixtures("fresh_worker_process")


@pytest.fixture
def app(database_url: str, redis: Redis, gateway) -> Flask:
    return app_with_directory(
        settings_for(database_url, gateway, sms_gateway="orange", orange_api_url=gateway.url)
    )


def test_the_bundle_balance_appears_on_the_queues_page(app, db, gateway, database_url) -> None:
    set_faults(gateway, orange_balance=321)
    client = signed_in(app, db, Role.COORDINATOR)
    assert "SMS restants : inconnu" in client.get("/admin/queues").text  # asked in the background
    run_worker(database_url, gateway)
    assert "321 SMS restants" in client.get("/admin/queues").text
    set_faults(gateway, orange_balance=5)
    assert "321 SMS restants" in client.get("/admin/queues").text  # kept a few minutes
    page = client.get("/admin/queues").text
    client.post("/admin/language", data={"lang": "en", "next": "/admin/queues", "csrf_token": csrf_of(page)})
    english = client.get("/admin/queues").text
    assert "SMS bundle (Orange)" in english and "321 SMS left" in english


def test_an_unreachable_orange_shows_unknown_without_slowing_the_page(app, db, gateway, database_url) -> None:
    client = signed_in(app, db, Role.COORDINATOR)
    client.get("/admin/queues")
    run_worker(database_url, gateway, orange_url="http://127.0.0.1:1")
    assert "SMS restants : inconnu" in client.get("/admin/queues").text


def test_the_balance_is_not_shown_for_another_gateway(database_url, redis, gateway, db) -> None:
    at_app = app_with_directory(settings_for(database_url, gateway))
    page = signed_in(at_app, db, Role.COORDINATOR).get("/admin/queues").text
    assert "Forfait SMS" not in page and redis.get("sira:orange:balance:asked") is None
