"""What the admin reads from URLs and forms: ids, counts and days, checked once for every page.

`str.isdigit()` accepts "²" and `int()` then fails; an id past the database's integer range
fails in the driver; a year 9999 overflows date arithmetic. Each gives "not given" here instead.
"""

from __future__ import annotations

import re
from datetime import date

MAX_ID = 2**31 - 1  # the database's integer columns
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)
_DIGITS = re.compile(r"[0-9]{1,10}")


def number(raw: str | None, maximum: int = MAX_ID) -> int | None:
    """A non-negative whole number written in ASCII digits, at most `maximum`; else None."""
    if not raw or not _DIGITS.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= maximum else None


def day(raw: str | None) -> date | None:
    """An ISO date between 2000 and 2100 (the service's lifetime, with room); else None."""
    try:
        parsed = date.fromisoformat(raw[:10]) if raw else None
    except ValueError:
        return None
    return parsed if parsed is not None and FIRST_DAY <= parsed <= LAST_DAY else None
