"""The referral code's format: what `new_code` draws, what an SMS command and the admin's search
accept, and what a test finds in a screen. It sits in infra, the one layer both models/ (which
draws codes) and flows/ (which reads them in SMS) may import."""

from __future__ import annotations

import re

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud and copied by hand
LENGTH = 5
PATTERN = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")


def is_code(word: str) -> bool:
    """`word` (upper case) is written as a referral code, whether or not one exists."""
    return PATTERN.fullmatch(word) is not None


def codes_in(text: str) -> list[str]:
    """The words of `text` that are written as referral codes, in order (an SMS, a screen)."""
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return [word for word in words if is_code(word)]
