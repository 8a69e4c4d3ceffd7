"""Named checks for free-text answers: each returns the cleaned value, or None to re-ask."""

from __future__ import annotations

import re
import unicodedata

_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")


def first_name(text: str) -> str | None:
    """Letters (any alphabet), single spaces, hyphens or apostrophes; 2 to 30 characters."""
    value = " ".join(unicodedata.normalize("NFC", text).split())
    if not 2 <= len(value) <= 30 or not _NAME.match(value):
        return None
    return value[:1].upper() + value[1:]
