"""Browser tests: the machine's Chromium, driven by Playwright, on the app served over real HTTP.

One browser for the whole session, a fresh context (cookies, storage) for each test. They run on
PostgreSQL only: they test the pages, and both back-ends would double the slowest tests of the
suite for no page that differs. Without Chromium they are skipped, except under CI, where a
missing browser is a failure (.ci/run installs Debian's `chromium`).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy.orm import Session

from models.admin import Role, User
from tests.conftest import BACKENDS
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import seeded_app
from tests.test_admin_access import PASSWORD, make_user

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

CHROMIUM = ("chromium", "/usr/bin/chromium")


def chromium_path() -> str | None:
    for candidate in CHROMIUM:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        message = "no chromium on this machine: apt-get install --no-install-recommends chromium"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the browser tests)", pytrace=False)
        pytest.skip(message)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def backend() -> str:
    """PostgreSQL when the session has it (see the module's doc)."""
    return "postgresql" if "postgresql" in BACKENDS else BACKENDS[0]


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    """The seeded app, pointed at the emulator; its cookie is not `Secure` over plain http."""
    app = seeded_app(database_url, gateway)
    app.config["ADMIN_COOKIE_SECURE"] = False
    return app


@pytest.fixture
def context(browser, live_server) -> Iterator[object]:
    """A fresh browser profile whose relative URLs go to the live server."""
    ctx = browser.new_context(base_url=live_server.url, locale="fr-FR")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context) -> object:
    return context.new_page()


def sign_in(page, db: Session, role: Role, email: str | None = None, provider_id: int | None = None) -> User:
    """Make an account and sign in through the login form, as a person would."""
    user = make_user(db, email or f"{role.value}{provider_id or ''}@example.org", role, provider_id)
    page.goto("/admin/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/(?!login)"))
    return user


def csrf_token(page) -> str:
    return page.locator('input[name="csrf_token"]').first.get_attribute("value")


def screenshot(page, name: str) -> Path:
    """For a person checking a page by eye while writing a test; not used by assertions."""
    path = Path(os.environ.get("BROWSER_SHOTS", "/tmp")) / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
