"""Folding text to what a channel can carry: plain ASCII for USSD, GSM-7 for SMS.

Catalogs keep real orthography (ɛ ɔ ɲ ŋ, é, ê...). Handsets on USSD show only plain letters,
and one character outside GSM-7 turns an SMS into UCS-2 at 70 characters a segment.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

_SPECIAL = {
    "ɛ": "e",
    "Ɛ": "E",
    "ɔ": "o",
    "Ɔ": "O",
    "ɲ": "ny",
    "Ɲ": "Ny",
    "ŋ": "ng",
    "Ŋ": "Ng",
    "ε": "e",
    "э": "e",
    "є": "e",
    "œ": "oe",
    "Œ": "OE",
    "æ": "ae",
    "ß": "ss",
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "…": "...",
    "–": "-",
    "—": "-",
    "\u00a0": " ",
    "•": "*",
}
_GSM_KEEP = set("éèàùÉòìÄÖÑÜäöñüÅåØøÆæ")
_GSM_SPECIAL = {"ɛ": "è", "ɔ": "ò", "Ɛ": "E", "Ɔ": "O"}


@lru_cache(maxsize=4096)
def to_ussd(text: str) -> str:
    """Plain ASCII: what every handset renders on a USSD screen."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
            out.append(base if base.isascii() else "?")
    return "".join(out)


@lru_cache(maxsize=4096)
def to_gsm7(text: str) -> str:
    """GSM-7 letters: keep é è à ù É (French needs them), write ɛ/ɔ as è/ò, fold the rest as for USSD.

    Tone marks (which catalogs should not carry anyway) go with the folding of their letter.
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in _GSM_SPECIAL:
            out.append(_GSM_SPECIAL[ch])
        elif ch in _GSM_KEEP:
            out.append(ch)
        else:
            out.append(to_ussd(ch))
    return "".join(out)
