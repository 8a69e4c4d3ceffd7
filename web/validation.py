"""Checks on every field a gateway callback carries: presence, length and characters.

Africa's Talking sends short ASCII ids, digits and what the person typed. Anything else is a
bug or someone probing: it is answered with a reason and writes nothing. Control characters are
refused everywhere (PostgreSQL cannot even store a NUL), so what is stored can be shown safely.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ID = re.compile(r"[\x21-\x7e]+")  # gateway ids: visible ASCII, no spaces
DIGITS = re.compile(r"[0-9]+")
SERVICE_CODE = re.compile(r"[0-9*#]+")
PHONE = re.compile(r"[0-9+()\-. ]+")
SHORT_CODE = re.compile(r"[0-9A-Za-z+ ]+")
WORD = re.compile(r"[A-Za-z_ ]+")
_ALLOWED_CONTROLS = frozenset("\n\r\t")


class Invalid(ValueError):
    """A field is missing or malformed; the message names it and says why."""


@dataclass(frozen=True)
class Field:
    """One form field: its longest length, its characters (None: any text) and whether it must be there."""

    name: str
    max_length: int
    pattern: re.Pattern[str] | None = None
    required: bool = False
    blank_ok: bool = False  # present but possibly empty (an SMS may have no text)
    reason: str = "has characters that are not allowed"


def check(form: Mapping[str, str], fields: Iterable[Field]) -> dict[str, str]:
    """The fields of `form`, checked (absent optional ones as ""); raises `Invalid` on the first bad one."""
    checked: dict[str, str] = {}
    for field in fields:
        value = form.get(field.name)
        if value is None or (not value.strip() and not field.blank_ok):
            if field.required:
                raise Invalid(f"missing field {field.name}")
            checked[field.name] = ""
            continue
        if len(value) > field.max_length:
            raise Invalid(f"field {field.name} is longer than {field.max_length} characters")
        stripped = value.strip()
        if field.pattern is not None:
            if stripped and not field.pattern.fullmatch(stripped):
                raise Invalid(f"{field.name} {field.reason}")
        elif not is_text(value):
            raise Invalid(f"{field.name} {field.reason}")
        checked[field.name] = value
    return checked


def is_text(value: str) -> bool:
    """Printable text: letters of any script, but no control, surrogate or unassigned characters."""
    return all(
        ch in _ALLOWED_CONTROLS or unicodedata.category(ch) not in ("Cc", "Cs", "Cn", "Co") for ch in value
    )
