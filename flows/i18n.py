"""Translation catalogs (gettext .po files, read with Babel) for every user-facing text.

Screens hold English message ids marked with `_()`; rendering looks them up per language. The
catalogs are parsed once per process (and version of each file) into read-only dicts, so the
engine stays pure and fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from babel.messages.pofile import read_po

LANGUAGES = ("fr", "bm", "en")
DEFAULT_LANGUAGE = "fr"
CATALOG_DIR = Path(__file__).resolve().parent.parent / "translations"


def _(msgid: str) -> str:
    """Mark a message id for extraction; translation happens at render time."""
    return msgid


class Catalogs:
    """Message ids to translated strings, per language; a missing entry falls back to the id."""

    def __init__(self, messages: Mapping[str, Mapping[str, str]]) -> None:
        self.messages = messages

    @classmethod
    def load(
        cls, directory: Path = CATALOG_DIR, domain: str = "messages", languages: tuple[str, ...] = LANGUAGES
    ) -> Catalogs:
        """Read `<lang>/LC_MESSAGES/<domain>.po` for each language (the admin has its own domain)."""
        messages: dict[str, Mapping[str, str]] = {}
        for lang in languages:
            path = directory / lang / "LC_MESSAGES" / f"{domain}.po"
            messages[lang] = _read(path, path.stat().st_mtime_ns)
        return cls(messages)

    def gettext(self, lang: str, msgid: str) -> str:
        table = self.messages.get(lang) or self.messages.get(DEFAULT_LANGUAGE) or {}
        return table.get(msgid) or msgid


@lru_cache(maxsize=64)
def _read(path: Path, _mtime_ns: int) -> Mapping[str, str]:
    """One .po file's translations, parsed once per process and version of the file: parsing
    takes ~20 ms a file, and every app the process builds (a test each) reads the same six."""
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=None)
    return MappingProxyType({m.id: m.string for m in catalog if m.id and m.string})
