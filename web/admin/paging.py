"""Pages of rows fetched with LIMIT/OFFSET: the database does the paging, never Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

MAX_PAGE = 10_000  # deeper offsets are slow and nobody reads them: filter instead


@dataclass(frozen=True)
class Page:
    SIZE: ClassVar[int] = 50

    number: int
    items: Sequence[Any]
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.number > 1


def page_number(args: Mapping[str, str]) -> int:
    raw = args.get("page", "1")
    return min(max(int(raw), 1), MAX_PAGE) if raw.isdigit() else 1
