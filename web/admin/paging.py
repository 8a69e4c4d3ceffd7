"""Pages of rows fetched with LIMIT/OFFSET: the database does the paging, never Python.

A deep OFFSET makes the database walk every row before the page. `page_ids` walks an index
instead (ORDER BY columns + id, read without touching the table), and the page's rows are then
fetched by id: page 2,000 of 100,000 referrals costs milliseconds rather than a table read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, Select, Subquery

from web.admin.inputs import number

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
    found = number(raw)
    return min(max(found, 1), MAX_PAGE) if found is not None else 1


def page_ids(query: Select, key: ColumnElement, order: Sequence[ColumnElement], number: int) -> Subquery:
    """The ids of page `number` (and one more row, to know of a next page), as a subquery to join."""
    return (
        query.with_only_columns(key)
        .order_by(*order)
        .limit(Page.SIZE + 1)
        .offset((number - 1) * Page.SIZE)
        .subquery("page")
    )
