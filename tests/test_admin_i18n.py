"""The admin speaks French first and English on request, and every text goes through its catalogs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from flask import Flask
from sqlalchemy.orm import Session

from tests.test_admin_access import csrf_of, login, make_user
from web.admin.i18n import LANG_COOKIE

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "web" / "admin" / "templates"
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
TAG = re.compile(r"<[^>]*>", re.S)
ENTITY = re.compile(r"&[a-z]+;|&#\d+;")
# The brand, a unit, and the languages named in their own tongue (so that anyone finds theirs).
UNTRANSLATED = {"Sira", "ms", "English", "Français"}


def test_every_admin_message_is_translated_in_french_and_english() -> None:
    """`scripts/admin-catalogs --check` finds every `_()` of web/admin and fails on a missing one."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "admin-catalogs"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with (ROOT / "translations" / "fr" / "LC_MESSAGES" / "admin.po").open("rb") as fh:
        french = {m.id: m.string for m in read_po(fh) if m.id}
    assert french["Referrals"] == "Orientations" and len(french) > 100


def test_no_template_writes_text_outside_the_catalogs() -> None:
    """What is left once Jinja and HTML are taken out must be punctuation, not words."""
    for path in TEMPLATES.rglob("*.html"):
        left = ENTITY.sub(" ", TAG.sub(" ", JINJA.sub(" ", path.read_text(encoding="utf-8"))))
        words = {w for w in re.findall(r"[^\W\d_]{2,}", left)} - UNTRANSLATED
        assert not words, f"{path.name}: text outside _(): {sorted(words)}"


def test_french_by_default_english_on_request_and_remembered_after_login(app: Flask, db: Session) -> None:
    make_user(db, "coord@example.org")
    client = app.test_client()
    page = client.get("/admin/login")
    assert '<html lang="fr">' in page.text and "Mot de passe" in page.text
    switched = client.post(
        "/admin/language", data={"lang": "en", "next": "/admin/login", "csrf_token": csrf_of(page.text)}
    )
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/admin/login")
    page = client.get("/admin/login")
    assert '<html lang="en">' in page.text and "Password" in page.text and "Mot de passe" not in page.text
    login(client, "coord@example.org")
    listing = client.get("/admin/referrals")
    assert "No referrals." in listing.text and "Orientations" not in listing.text


def test_an_unknown_language_falls_back_to_french_and_a_post_without_token_changes_nothing(
    app: Flask,
) -> None:
    client = app.test_client()
    refused = client.post("/admin/language", data={"lang": "en"})
    assert refused.status_code == 400 and LANG_COOKIE not in refused.headers.get("Set-Cookie", "")
    token = csrf_of(client.get("/admin/login").text)
    client.post("/admin/language", data={"lang": "xx", "csrf_token": token})
    assert "Mot de passe" in client.get("/admin/login").text
