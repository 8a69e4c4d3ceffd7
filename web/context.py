"""The app's collaborators, gathered in one typed object that `create_app` builds.

Views, commands and tests reach the settings, the database sessions, Redis, the stores, the
conversation and the texts through `sira()` (the current app's) or `sira(app)`, with their types,
instead of string keys looked up all over the code. This module holds the one lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:
    from redis import Redis
    from sqlalchemy.orm import Session, sessionmaker

    from config import Settings
    from flows.engine import Engine, State
    from flows.i18n import Catalogs
    from flows.sms import SmsTexts
    from infra.queues import Outbox
    from infra.ratelimit import RateLimit
    from infra.spool import Spool
    from infra.ussd_store import UssdStore
    from services.converse import Converse
    from web.admin.sessions import SessionStore
    from web.admin.throttle import LoginThrottle

_KEY = "sira"


@dataclass(frozen=True)
class Sira:
    """Everything the app is made of, built once per app."""

    settings: Settings
    sessions: sessionmaker[Session]  # the database; a request's own session is web.db.get_session()
    redis: Redis
    outbox: Outbox  # queues SMS once their rows are committed
    engine: Engine
    sms_texts: SmsTexts
    ussd_store: UssdStore[State]
    converse: Converse  # one USSD step, whatever transport brought it
    ussd_limit: RateLimit
    sms_limit: RateLimit
    spool: Spool
    admin_catalogs: Catalogs
    admin_sessions: SessionStore
    login_throttle: LoginThrottle


def init_app(app: Flask, collaborators: Sira) -> None:
    app.extensions[_KEY] = collaborators


def sira(app: Flask | None = None) -> Sira:
    """The collaborators of `app`, or of the current app."""
    return (app or current_app).extensions[_KEY]
