"""The admin's language: French first, English available, from its own catalog domain (`admin.po`).

The admin's texts are not the returnees': they live apart from `messages.po` (no Bambara needed,
no USSD limits), under the same English message ids and the same `_()` marker. The choice is a
cookie, so it survives logins and needs no account setting.
"""

from __future__ import annotations

from flask import Flask, current_app, g, redirect, request
from flask.typing import ResponseReturnValue

from flows.i18n import _
from web.context import sira

__all__ = ["ADMIN_LANGUAGES", "LANG_COOKIE", "_", "choose_language", "init_app", "translate"]

ADMIN_LANGUAGES = ("fr", "en")
DEFAULT = "fr"
LANG_COOKIE = "sira_admin_lang"
YEAR = 365 * 24 * 3600


def language() -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    return chosen if chosen in ADMIN_LANGUAGES else DEFAULT


def translate(msgid: str) -> str:
    """The message in the page's language; the id itself (English) when a catalog lacks it."""
    lang = g.get("admin_lang") or DEFAULT
    return sira().admin_catalogs.gettext(lang, msgid)


def choose_language(next_url: str) -> ResponseReturnValue:
    """Remember the language asked for (an unknown one falls back to French) and go back."""
    lang = request.form.get("lang", "")
    response = redirect(next_url)
    response.set_cookie(
        LANG_COOKIE, lang if lang in ADMIN_LANGUAGES else DEFAULT, max_age=YEAR, path="/admin",
        secure=current_app.config.get("ADMIN_COOKIE_SECURE", True), httponly=True, samesite="Lax",
    )  # fmt: skip
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.globals["_"] = translate
