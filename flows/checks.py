"""Named checks for free-text answers: each returns the cleaned value, or None to re-ask."""

from __future__ import annotations

import re
import unicodedata

from flows.text import to_ussd

_NAME = re.compile(r"^[^\W\d_]+(?:[ '\-][^\W\d_]+)*$")


def first_name(text: str) -> str | None:
    """Latin letters (accents welcome), single spaces, hyphens or apostrophes; 2 to 30 characters.

    The name goes out by USSD and SMS in plain letters: a script they cannot carry would reach
    the provider as "????".
    """
    value = " ".join(unicodedata.normalize("NFC", text).split())
    if not 2 <= len(value) <= 30 or not _NAME.match(value) or "?" in to_ussd(value):
        return None
    return value[:1].upper() + value[1:]
