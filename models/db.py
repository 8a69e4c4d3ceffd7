"""One engine and one sessionmaker per process, and the few statements every layer shares.

Workers and CLI commands call `make_session_factory(url, keyring)` and own their sessions; they never
need a Flask app context (the request-scoped session is `web.db`). Functions elsewhere take a
`Session` argument; the caller commits.
"""

from __future__ import annotations

import sqlite3
import time
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Engine, Insert, Row, Table, create_engine, event, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from infra.metrics import DATABASE_ERRORS
from infra.sealing import Keyring
from models.encrypted import bind_keyring


def make_engine(url: str, keyring: Keyring, connect_timeout: int = 2) -> Engine:
    """Create the engine; SQLite gets WAL and a busy timeout so web and worker can share it.

    PostgreSQL gets a connect time-out: a database host that stops answering must fail a USSD
    step within its few seconds (the returnee gets "try again later"), not hang it.

    `hide_parameters`: a database error must not carry a phone number or a name into a log
    line or into the traceback RQ keeps for a failed job. `keyring` encrypts the personal
    columns (models.encrypted). SQLite's `secure_delete` zeroes what a deletion or an erasure
    frees instead of leaving it in the file's free pages.
    """
    engine = _engine(url, connect_timeout)
    bind_keyring(engine, keyring)
    event.listen(engine, "handle_error", _count_error)
    return engine


def _engine(url: str, connect_timeout: int) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"timeout": 15, "check_same_thread": False}, hide_parameters=True
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    # No pre-ping: it costs a round trip per request; a dropped connection fails one request
    # (answered politely) and the pool replaces it.
    return create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={"connect_timeout": connect_timeout},
    )


def _use_wal(cursor: Any, attempts: int = 50) -> None:
    """Put the SQLite file in WAL mode, once: the mode is kept in the file.

    Switching needs the file to itself, and SQLite answers "database is locked" at once, without
    waiting, when two processes switch together (web and worker starting on a new file). So a
    file already in WAL is left alone, and a switch that meets another is tried again. A
    database that cannot be in WAL (in memory) keeps its mode, as SQLite answers.
    """
    for attempt in range(1, attempts + 1):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == attempts:
                raise
            time.sleep(0.01 * (1 + attempt % 5))


def _count_error(context: ExceptionContext) -> None:
    """Every failed statement or connection, for the operators' error rate (never its text)."""
    DATABASE_ERRORS.labels(_error_kind(context)).inc()


def _error_kind(context: ExceptionContext) -> str:
    if context.connection is None:  # the database did not let us connect at all
        return "connect"
    return "disconnect" if context.is_disconnect else "statement"


def make_session_factory(url: str, keyring: Keyring, connect_timeout: int = 2) -> sessionmaker[Session]:
    return sessionmaker(bind=make_engine(url, keyring, connect_timeout), expire_on_commit=False)


def autocommit_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the same engine and pool in which each statement commits by itself.

    For work made of single statements, each a whole step on its own (the send job's claim, then
    its record of the gateway's answer): a transaction would wrap each in BEGIN and COMMIT, three
    round trips to the database instead of one.
    """
    return sessionmaker(bind=autocommit_engine(sessions), expire_on_commit=False)


def autocommit_engine(sessions: sessionmaker[Session]) -> Engine:
    """The sessions' engine and pool, each statement its own transaction (no BEGIN, no COMMIT)."""
    return sessions.kw["bind"].execution_options(isolation_level="AUTOCOMMIT")


def unflushed_commit(session: Session) -> tuple[ColumnElement[bool], ...]:
    """WHERE conditions, always true, with which a statement run on its own (see `autocommit_sessions`)
    commits without waiting for the disk: PostgreSQL's `synchronous_commit` off for that statement's
    transaction only. Elsewhere, none.

    The commit is visible to every other session at once, as any; only a crash of the database within
    a fraction of a second may lose it. Use it only for a write whose loss costs nothing more than
    what a crash costs anyway: the next durable commit on the server flushes it too. The wait it
    saves is the disk's flush, here 0.3 to 3 ms, several times the statement's own time.
    """
    if session.get_bind().dialect.name != "postgresql":
        return ()
    return (func.set_config("synchronous_commit", "off", True) == "off",)


def insert_ignore(session: Session, model: type, **values: object) -> int | None:
    """INSERT that does nothing when a unique key already holds the row (replays, retries).

    Returns the new row's id, or None when the row was already there.
    """
    statement = _insert_ignore_statement(model.__table__, session.get_bind().dialect.name)
    return session.connection().execute(statement, values).scalar_one_or_none()


def dialect_insert(table: Table, dialect: str) -> Insert:
    """An INSERT into `table` that knows ON CONFLICT, in the database's own dialect."""
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(table)


@lru_cache(maxsize=64)
def _insert_ignore_statement(table: Table, dialect: str) -> Insert:
    """Built once per table: building and caching-key generation cost more than the insert."""
    return dialect_insert(table, dialect).on_conflict_do_nothing().returning(table.c.id)


def conflict_changes(
    table: Table, insert: Any, update: tuple[str, ...], keep_first: tuple[str, ...]
) -> dict[str, Any]:
    """The SET of an upsert's ON CONFLICT: `update` columns take the new values, `keep_first` ones
    keep a value already set, and columns with a Python-side `onupdate` take the new row's."""
    changes: dict[str, Any] = {name: insert.excluded[name] for name in update}
    changes.update({name: func.coalesce(table.c[name], insert.excluded[name]) for name in keep_first})
    # SQLAlchemy leaves Python-side `onupdate` out of ON CONFLICT: such a column takes the new
    # row's default (its INSERT value) instead.
    for column in table.c:
        if column.onupdate is not None and column.default is not None and column.name not in changes:
            changes[column.name] = insert.excluded[column.name]
    return changes


def with_defaults(table: Table, values: dict[str, object]) -> dict[str, object]:
    """`values` and the Python-side defaults of the columns they leave out.

    SQLAlchemy fills those in for an INSERT run as a statement, not for one inside a WITH.
    """
    filled = dict(values)
    for column in table.c:
        default = column.default
        if column.name not in filled and default is not None and (default.is_scalar or default.is_callable):
            filled[column.name] = default.arg if default.is_scalar else default.arg(None)
    return filled


def upsert(
    session: Session,
    table: Table,
    key: str,
    values: dict[str, object],
    update: tuple[str, ...],
    keep_first: tuple[str, ...] = (),
    returning: tuple[str, ...] = (),
) -> Row | None:
    """INSERT, or UPDATE the row that already holds `values[key]`, in one statement.

    `update` columns take the new values; `keep_first` columns keep a value already set. Values
    are bound through the table's column types (TypeDecorators apply, as with the ORM). Returns
    the `returning` columns as they are after the statement.
    """
    statement = _upsert_statement(table, session.get_bind().dialect.name, key, update, keep_first, returning)
    result = session.connection().execute(statement, values)
    return result.first() if returning else None


@lru_cache(maxsize=64)
def _upsert_statement(
    table: Table, dialect: str, key: str, update: tuple[str, ...], keep_first: tuple[str, ...],
    returning: tuple[str, ...],
) -> Insert:  # fmt: skip
    insert = dialect_insert(table, dialect)
    changes = conflict_changes(table, insert, update, keep_first)
    statement = insert.on_conflict_do_update(index_elements=[table.c[key]], set_=changes)
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement
