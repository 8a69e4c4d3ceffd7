"""The request-scoped database session: opened on first use, closed at teardown."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from web.context import sira


def init_app(app: Flask) -> None:
    """Close the request's session at teardown."""
    app.teardown_appcontext(_close_session)


def get_session() -> Session:
    """The current request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = sira().sessions()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def rollback_session() -> None:
    """Roll back the request's session, if the request opened one."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()
