"""The request-scoped database session: opened on first use, closed at teardown."""

from __future__ import annotations

from typing import TypeVar

from flask import Flask, abort, g
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


Row = TypeVar("Row")


def get_or_404(model: type[Row], key: object) -> Row:
    """The `model` row of primary key `key` in the request's session, or the page's 404."""
    found = get_session().get(model, key)
    if found is None:
        abort(404)
    return found


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def rollback_session() -> None:
    """Roll back the request's session, if the request opened one."""
    session = g.get("db_session")
    if session is not None:
        session.rollback()
