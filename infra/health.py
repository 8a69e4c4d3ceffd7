"""Is the database answering? Is Redis? Used by `/healthz` and by every process at start-up."""

from __future__ import annotations

import logging

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


class ServiceDown(RuntimeError):
    """A service the process needs does not answer; the message says which and how to fix it."""


def check_database(sessions: sessionmaker[Session]) -> str | None:
    """None if the database answers, else a one-line reason."""
    try:
        with sessions() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = exc.orig or exc
        # The driver's words (which host, which lock) go to the log only: /healthz is public.
        reason = " ".join(str(cause).split())[:300]  # one line per record, however the driver words it
        log.warning("database check failed: %s: %s", type(cause).__name__, reason)
        return f"database not answering ({type(cause).__name__})"
    return None


def check_redis(redis: Redis) -> str | None:
    """None if Redis answers, else a one-line reason."""
    try:
        redis.ping()
    except RedisError as exc:
        return f"redis not answering ({type(exc).__name__})"
    return None


def require_services(sessions: sessionmaker[Session], redis: Redis) -> None:
    """Fail at start-up with a clear message rather than at the first request."""
    problems = [p for p in (check_database(sessions), check_redis(redis)) if p]
    if problems:
        raise ServiceDown("; ".join(problems) + " — check DATABASE_URL and REDIS_URL")
