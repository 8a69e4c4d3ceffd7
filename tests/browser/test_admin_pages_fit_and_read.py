"""Every admin page fits a laptop's 1366 px without sideways scrolling, and a phone's 390 px with
tables scrolling inside their own box; axe-core finds nothing serious or critical on any of
them; the login form works with the keyboard alone.

Screenshots of each page go to $BROWSER_SHOTS (/tmp by default), or, under
`python -m tests.browser.screens`, to docs/screens/ (the French pages at 1366 px).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from flows import options
from models.directory import Region
from models.referral import Referral
from services.referrals import refer
from tests.browser.admin_pages import (
    LAPTOP,
    PHONE,
    admin_pages,
    axe_script,
    axe_violations,
    overflow,
    sign_in_as,
)
from tests.test_admin_access import PASSWORD
from tests.test_admin_labels import everything, returnee  # noqa: F401
from tests.test_admin_referrals import seeded  # noqa: F401
from web.context import sira

SCREENS = os.environ.get("SIRA_SCREENS_DIR")  # set by tests.browser.screens only
SCREENS_HEIGHT = 1300  # px: a long list's first rows say enough, and keep the pictures small


def shot(page, name: str, width: int) -> None:
    """The page as a reader sees it; for docs/screens/, cut after its first screens, to stay small."""
    if SCREENS:
        height = min(page.evaluate("document.documentElement.scrollHeight"), SCREENS_HEIGHT)
        clip = {"x": 0, "y": 0, "width": width, "height": height}
        page.screenshot(path=str(Path(SCREENS) / f"{name}.png"), full_page=True, clip=clip)
    else:
        folder = Path(os.environ.get("BROWSER_SHOTS", "/tmp"))
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)


@pytest.fixture
def pages(everything: Flask, db: Session) -> dict[str, str]:  # noqa: F811
    # A referral for every need and region, so that the dashboard's tables hold their longest names.
    texts = sira(everything).sms_texts
    regions = db.scalars(select(Region.code).order_by(Region.code)).all()
    for n, category in enumerate(options.CATEGORIES):
        refer(db, returnee(db, 20 + n, region=regions[n % len(regions)]), category.code, texts)
    db.commit()
    found = admin_pages(everything)
    # The views a coordinator works in every day must be among them, or the crawl went wrong.
    assert {"dashboard", "referrals", "referral", "sms_log", "providers", "audit_log"} <= set(found), found
    # The states a page shows only for some referrals: flagged for a coordinator, in the list and alone.
    flagged = db.scalar(select(Referral.code).where(Referral.flagged).order_by(Referral.id))
    found["referral_flagged"] = f"/admin/referrals/{flagged}"
    found["referrals_flagged"] = "/admin/referrals?flagged=1"
    return found


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366px", "390px"])
def test_every_admin_page_fits_its_width_and_axe_finds_nothing_serious(
    browser, live_server, db: Session, pages: dict[str, str], viewport: dict[str, int]
) -> None:
    axe_script()
    context = browser.new_context(
        base_url=live_server.url, locale="fr-FR", viewport=viewport, bypass_csp=True
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    laptop = viewport is LAPTOP
    problems: dict[str, list[str]] = {}
    try:
        page.goto("/admin/login")
        shot(page, "login", viewport["width"])
        problems["login"] = overflow(page, laptop) + axe_violations(page)
        sign_in_as(page)
        for name, url in sorted(pages.items()):
            response = page.goto(url)
            assert response.status == 200, (url, response.status)
            shot(page, name, viewport["width"])
            problems[name] = overflow(page, laptop) + axe_violations(page)
    finally:
        context.close()
    found = [
        f"{name} ({pages.get(name, '/admin/login')}): {p}" for name, found in problems.items() for p in found
    ]
    assert not found, "\n".join(found)


def test_the_login_form_works_with_the_keyboard_alone(page, db: Session, everything: Flask) -> None:  # noqa: F811
    page.goto("/admin/login")
    focused = "() => document.activeElement.name || document.activeElement.textContent.trim()"
    page.keyboard.press("Tab")  # from the address bar into the page: the header's links come first
    for _ in range(10):
        if page.evaluate(focused) == "email":
            break
        page.keyboard.press("Tab")
    assert page.evaluate(focused) == "email", "Tab never reaches the email field"
    page.keyboard.type("admin@example.org")
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "password"
    page.keyboard.type("wrong password")
    page.keyboard.press("Enter")
    page.get_by_role("alert").wait_for()  # a wrong password says so...
    assert page.evaluate(focused) == "email"  # ...and the form is ready to be typed into again
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Connexion"  # the submit button is next
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/admin/(?!login)"))
    assert page.get_by_role("button", name="Déconnexion").is_visible()
