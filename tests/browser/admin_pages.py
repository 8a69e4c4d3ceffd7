"""Every admin page, as a signed-in admin reaches it, measured in a real browser: does its main
content fit the window, and what does axe-core find wrong with it.

Shared by the layout and accessibility tests and by `python -m tests.browser.screens`, which saves
the French pages at 1366 px into docs/screens/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException

from tests.test_admin_access import PASSWORD, login
from tests.test_admin_labels import crawl

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
ADMIN = "admin@example.org"  # made by the `everything` fixture, with every role's data around it

# Pages no link leads an admin to: the sign-in form (signed out) and the reception agents' form.
UNLINKED = ("/admin/register",)

# The element whose sideways overflow a reader would have to scroll: the main content, and at
# laptop width each table's container too (a table may scroll inside it on a phone, not on a laptop).
OVERFLOW = """(laptop) => {
  const wide = (el) => el.scrollWidth > el.clientWidth + 1;
  const found = [];
  const main = document.querySelector('main');
  if (wide(main)) found.push(`main: ${main.scrollWidth} > ${main.clientWidth}`);
  if (document.documentElement.scrollWidth > window.innerWidth + 1)
    found.push(`page: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
  for (const box of document.querySelectorAll('main .columns > *'))  // side by side: none may spill on the next
    if (wide(box)) found.push(`a column of ${box.parentElement.className}: ${box.scrollWidth} > ${box.clientWidth}`);
  if (laptop) for (const box of document.querySelectorAll('main .scroll, main table')) {
    if (wide(box)) found.push(`${box.tagName.toLowerCase()}.${box.className}: ${box.scrollWidth} > ${box.clientWidth}`);
  }
  return found;
}"""

# axe-core's serious and critical findings, each with the first elements it names.
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} -- ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
}"""


def axe_script() -> Path:
    """axe-core from package.json (`npm ci` in scripts/test); without it, skip, except under CI."""
    if not AXE.is_file():
        message = "no axe-core: run `npm ci` at the repository's root"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the accessibility tests)", pytrace=False)
        pytest.skip(message)
    return AXE


def admin_pages(app: Flask) -> dict[str, str]:
    """One page per admin view an admin can open, by the view's name: the first link the crawl
    finds to it, plus the pages no link leads to."""
    client = login(app.test_client(), ADMIN)
    adapter = app.url_map.bind("localhost")
    pages: dict[str, str] = {}
    for url in [*crawl(client), *UNLINKED]:
        path = url.split("?")[0]
        try:
            endpoint, _ = adapter.match(path)
        except HTTPException:
            continue
        response = client.get(url)
        if response.status_code == 200 and response.mimetype == "text/html":
            pages.setdefault(endpoint.removeprefix("admin."), url)
    return pages


def sign_in_as(page, email: str = ADMIN) -> None:
    """Sign in through the form, with the keyboard's Enter."""
    page.goto("/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_label("Mot de passe").press("Enter")
    page.wait_for_url(lambda url: "/admin/login" not in url)


def overflow(page, laptop: bool) -> list[str]:
    return page.evaluate(OVERFLOW, laptop)


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(axe_script()))
    return page.evaluate(AXE_RUN)
