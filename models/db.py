"""One engine and one sessionmaker per process; a request-scoped session for Flask.

Workers and CLI commands call `make_session_factory(url)` and own their sessions; they never
need a Flask app context. Functions elsewhere take a `Session` argument; the caller commits.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
    """Create the engine; SQLite gets WAL and a busy timeout so web and worker can share it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def make_session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=make_engine(url), expire_on_commit=False)


def init_app(app: Flask) -> None:
    """Attach the session factory to the app and close the request's session at teardown."""
    app.extensions["sira.sessions"] = make_session_factory(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The current request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["sira.sessions"]()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def insert_ignore(session: Session, model: type, **values: object) -> int | None:
    """INSERT that does nothing when a unique key already holds the row (replays, retries).

    Returns the new row's id, or None when the row was already there.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(model).values(**values).on_conflict_do_nothing().returning(model.id)
    return session.execute(statement).scalar_one_or_none()
