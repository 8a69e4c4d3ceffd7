"""Columns encrypted at rest: code reads and writes plain `str` attributes, the database holds tokens.

The keyring travels with the database engine (`bind_keyring`, called by `models.db.make_engine`):
a column type only sees the engine's dialect, and hanging the keyring there means two apps in
one process (tests, a rotation) each read with their own keys, with no process-wide global to
forget or to leak. An engine without a keyring refuses to read or write these columns.

Encrypted values cannot be compared in SQL (every encryption of a value differs): a lookup goes
through the column's keyed hash (`phone_hash`, `to_hash`, `from_hash`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Integer, MetaData, Text, column, select, table, update
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from infra.sealing import Keyring, Undecryptable, key_id

_ATTRIBUTE = "sira_keyring"


class KeyringMissing(RuntimeError):
    """An engine was built without a keyring; nothing is written in clear instead."""


def bind_keyring(engine: Engine, keyring: Keyring) -> None:
    setattr(engine.dialect, _ATTRIBUTE, keyring)


def keyring_of(dialect: Dialect) -> Keyring:
    keyring = getattr(dialect, _ATTRIBUTE, None)
    if keyring is None:
        raise KeyringMissing("this database engine has no keyring: build it with models.db.make_engine")
    return keyring


class EncryptedText(TypeDecorator[str]):
    """Text stored as `v1:<key id>:<base64url>` (AES-256-GCM); a wrong key or an altered value raises."""

    impl = Text
    cache_ok = True

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        """Refuse `column == value` and the like: every encryption differs, so it would never match."""
        raise TypeError(
            "an encrypted column cannot be compared to a value in SQL: filter on its keyed hash "
            "(phone_hash, to_hash, from_hash) instead"
        )

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).encrypt(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).decrypt(value)


def encrypted_columns(metadata: MetaData) -> list[tuple[str, str]]:
    """(table, column) of every encrypted column, in a stable order."""
    return [
        (t.name, c.name)
        for t in metadata.sorted_tables
        for c in t.columns
        if isinstance(c.type, EncryptedText)
    ]


@dataclass
class Rewritten:
    """What a pass over one column did."""

    column: str
    values: int = 0
    rewritten: int = 0
    unreadable: int = 0


def rewrite_batch(
    connection: Connection,
    table_name: str,
    column_name: str,
    change: Callable[[str], str | None],
    after_id: int,
    size: int,
    counts: Rewritten,
) -> int | None:
    """Apply `change` to the next `size` non-null values after `after_id`; the last id, or None at the end.

    Values are read and written raw (no column type), so this serves migrations and rotation
    alike. `change` returns the new raw value or None to leave it; `Undecryptable` counts as
    unreadable and leaves it. An update only applies if the value is still the one read, so
    a row changed meanwhile by the application is not overwritten.
    """
    t = table(table_name, column("id", Integer), column(column_name, Text))
    value_column = t.c[column_name]
    rows = connection.execute(
        select(t.c.id, value_column)
        .where(t.c.id > after_id, value_column.is_not(None))
        .order_by(t.c.id)
        .limit(size)
    ).all()
    for row_id, value in rows:
        counts.values += 1
        try:
            new = change(value)
        except Undecryptable:
            counts.unreadable += 1
            continue
        if new is not None and new != value:
            connection.execute(
                update(t).where(t.c.id == row_id, value_column == value).values({column_name: new})
            )
            counts.rewritten += 1
    return rows[-1][0] if rows else None


def rewrite_column(
    connection: Connection,
    table_name: str,
    column_name: str,
    change: Callable[[str], str | None],
    size: int = 500,
) -> Rewritten:
    """Every value of a column through `change`, in batches, on one connection (a migration's)."""
    counts = Rewritten(f"{table_name}.{column_name}")
    after: int | None = 0
    while after is not None:
        after = rewrite_batch(connection, table_name, column_name, change, after, size, counts)
    return counts


def reencrypt(keyring: Keyring) -> Callable[[str], str | None]:
    """For rotation: a value under an older key, decrypted and encrypted with the current one."""

    def change(token: str) -> str | None:
        return None if keyring.is_current(token) else keyring.encrypt(keyring.decrypt(token))

    return change


def rotate(engine: Engine, metadata: MetaData, size: int = 500) -> list[Rewritten]:
    """Re-encrypt every encrypted value with the engine's current key; one transaction per batch.

    Idempotent: values already under the current key are left, so an interrupted run resumes.
    """
    change = reencrypt(keyring_of(engine.dialect))
    results = []
    for table_name, column_name in encrypted_columns(metadata):
        counts = Rewritten(f"{table_name}.{column_name}")
        after: int | None = 0
        while after is not None:
            with engine.begin() as connection:
                after = rewrite_batch(connection, table_name, column_name, change, after, size, counts)
        results.append(counts)
    return results


def is_token(value: str) -> bool:
    return key_id(value) is not None


def check_readable(engine: Engine, metadata: MetaData, size: int = 500) -> list[Rewritten]:
    """Decrypt every encrypted value with the engine's keys, writing nothing: after a restore,
    whether the copy and the keys go together (`unreadable` counts the values that do not)."""
    keyring = keyring_of(engine.dialect)

    def read(token: str) -> None:
        keyring.decrypt(token)
        return None

    results = []
    for table_name, column_name in encrypted_columns(metadata):
        with engine.connect() as connection:
            results.append(rewrite_column(connection, table_name, column_name, read, size))
    return results
