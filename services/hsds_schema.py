"""HSDS 3.0 validation against Open Referral's published schemas (vendored in schemas/hsds-3.0).

A directory file is HSDS's JSON data package: `resources`, each an HSDS table by its name
(`organization`, `service`, `phone`...) with its rows inline in `data`. Every row is checked
against that table's published schema, so the file reads the same as HSDS's CSV form, with
JSON's types kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "hsds-3.0"
HSDS_VERSION = "3.0"
MAX_PROBLEMS = 20


class HsdsInvalid(ValueError):
    """A file that is not valid HSDS; `problems` name the record and the field of each fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@cache
def validators() -> dict[str, Draft202012Validator]:
    """One validator per HSDS table; the schemas' `$ref`s ("phone.json") resolve among themselves."""
    schemas = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in SCHEMA_DIR.glob("*.json")}
    registry = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT202012))
        for name, schema in schemas.items()
    )
    return {
        schema["name"]: Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
        for schema in schemas.values()
    }


def row_label(table: str, index: int, row: object) -> str:
    """How a problem names a record: its table and id, or its position when it has no id."""
    if isinstance(row, dict) and isinstance(row.get("id"), str):
        return f"{table} {row['id']}"
    return f"{table} #{index + 1}"


def field_of(path: Iterator[Any] | Any) -> str:
    return ".".join(str(part) for part in path) or "(record)"


def tables(document: object) -> dict[str, list[dict[str, Any]]]:
    """The rows of each HSDS table in the file, checked against the published schemas.

    Raises HsdsInvalid with every problem found (up to MAX_PROBLEMS), each naming its record and field.
    """
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise HsdsInvalid(["the file is not an HSDS data package: it has no list of 'resources'"])
    known = validators()
    problems: list[str] = []
    found: dict[str, list[dict[str, Any]]] = {}
    for position, resource in enumerate(document["resources"]):
        name = resource.get("name") if isinstance(resource, dict) else None
        if not isinstance(name, str) or name not in known:
            problems.append(f"resource #{position + 1}: 'name' {name!r} is not an HSDS 3.0 table")
            continue
        if name in found:
            problems.append(f"resource {name}: the table appears twice")
            continue
        rows = resource.get("data")
        if not isinstance(rows, list):
            problems.append(f"resource {name}: 'data' must be the list of its rows")
            continue
        for index, row in enumerate(rows):
            for error in sorted(known[name].iter_errors(row), key=lambda e: list(e.absolute_path)):
                problems.append(
                    f"{row_label(name, index, row)}: {field_of(error.absolute_path)}: {error.message}"
                )
        found[name] = rows
    for name, rows in found.items():
        seen: set[str] = set()
        for index, row in enumerate(rows):
            row_id = row.get("id") if isinstance(row, dict) else None
            if row_id in seen:
                problems.append(f"{row_label(name, index, row)}: id: the same id is used twice")
            seen.add(row_id)
    refuse_if_any(problems)
    return found


def refuse_if_any(problems: list[str]) -> None:
    """Refuse the file when anything is wrong, naming the first MAX_PROBLEMS and counting the rest."""
    if problems:
        extra = len(problems) - MAX_PROBLEMS
        raise HsdsInvalid(problems[:MAX_PROBLEMS] + ([f"... and {extra} more"] if extra > 0 else []))
