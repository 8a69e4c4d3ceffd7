"""How many SMS parts a text costs: GSM 03.38 (7-bit) when every character fits, UCS-2 otherwise.

One character outside the GSM alphabet (a French "ê", an emoji) turns the whole message into
UCS-2 and cuts a part from 160 to 70 characters, so wording decides the bill.
"""

from __future__ import annotations

# GSM 03.38 default alphabet, in code-point order 0x00-0x7F; 0x1B is the escape to the
# extension table and is not a character of its own, so it is left out.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ" + "ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension table: each of these is sent as ESC + code, so it takes two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE_PART = 160
GSM7_MULTI_PART = 153  # the rest of 140 octets holds the concatenation header
UCS2_SINGLE_PART = 70
UCS2_MULTI_PART = 67


def is_gsm7(text: str) -> bool:
    """Tell whether the text can go out in the 7-bit alphabet (the cheap encoding)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def segment_count(text: str) -> int:
    """Count the parts a handset receives, as the operator bills them (an empty text is one part)."""
    if is_gsm7(text):
        units = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return _pack(units, GSM7_SINGLE_PART, GSM7_MULTI_PART)
    # UCS-2 counts UTF-16 code units: a character beyond the BMP (most emoji) takes two.
    units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    return _pack(units, UCS2_SINGLE_PART, UCS2_MULTI_PART)


def _pack(units: list[int], single: int, multi: int) -> int:
    """Fill parts greedily; an escape pair or a surrogate pair is never split across two parts."""
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > multi:
            parts += 1
            used = 0
        used += size
    return parts
