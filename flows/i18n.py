"""Translation catalogs (gettext .po files, read with Babel) for every user-facing text.

Screens hold English message ids marked with `_()`; rendering looks them up per language. The
catalogs are loaded once per process into plain dicts, so the engine stays pure and fast.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.pofile import read_po

LANGUAGES = ("fr", "bm", "en")
DEFAULT_LANGUAGE = "fr"
CATALOG_DIR = Path(__file__).resolve().parent.parent / "translations"


def _(msgid: str) -> str:
    """Mark a message id for extraction; translation happens at render time."""
    return msgid


class Catalogs:
    """Message ids to translated strings, per language; a missing entry falls back to the id."""

    def __init__(self, messages: dict[str, dict[str, str]]) -> None:
        self.messages = messages

    @classmethod
    def load(
        cls, directory: Path = CATALOG_DIR, domain: str = "messages", languages: tuple[str, ...] = LANGUAGES
    ) -> Catalogs:
        """Read `<lang>/LC_MESSAGES/<domain>.po` for each language (the admin has its own domain)."""
        messages: dict[str, dict[str, str]] = {}
        for lang in languages:
            path = directory / lang / "LC_MESSAGES" / f"{domain}.po"
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=None)
            messages[lang] = {m.id: m.string for m in catalog if m.id and m.string}
        return cls(messages)

    def gettext(self, lang: str, msgid: str) -> str:
        table = self.messages.get(lang) or self.messages.get(DEFAULT_LANGUAGE) or {}
        return table.get(msgid) or msgid
