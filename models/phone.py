"""Phone numbers: E.164 normalisation and the keyed hash used to find a returnee.

Mali's mobile numbers are a space of ~37 million, so an unkeyed hash is reversed in seconds;
the HMAC key comes from the environment and never from the repo.
"""

from __future__ import annotations

import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

import phonenumbers

if TYPE_CHECKING:
    from config import Settings


class InvalidPhone(ValueError):
    """The text is not a phone number we can reach."""


@lru_cache(maxsize=4096)
def to_e164(raw: str, default_region: str = "ML") -> str:
    """Normalise what a gateway or a person typed to E.164 (+223XXXXXXXX)."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise InvalidPhone("empty or too long")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        raise InvalidPhone("not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone("not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def phone_hash(e164: str, key: str) -> str:
    """Keyed hash (HMAC-SHA256) of an E.164 number: the only form logs, Redis and jobs see.

    Cached: every USSD step of a session hashes the same number, and an HMAC costs more than
    the lookup (the cache lives in the process, never in Redis or a log).
    """
    return hmac.digest(key.encode(), e164.encode(), "sha256").hex()


class PhoneNumber(NamedTuple):
    """A number as Sira keeps it: E.164 to reach it, its keyed hash to find it."""

    e164: str
    digest: str

    @classmethod
    def parse(cls, raw: str, settings: Settings) -> PhoneNumber:
        """Read what a person or gateway typed with the settings' region, and hash it with their
        key: the one place the two go together. InvalidPhone (a ValueError) if it is no number."""
        e164 = to_e164(raw, settings.default_region_code)
        return cls(e164, phone_hash(e164, settings.phone_hash_key))


def masked(e164: str) -> str:
    """A number as a person may see it when they must not read it: +223 70 •• •• 01."""
    return f"{e164[:6]} •• •• {e164[-2:]}" if len(e164) > 8 else "••"
