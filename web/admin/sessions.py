"""Admin sessions kept in Redis, so that logging out or disabling a user ends them at once.

The browser holds only a random id; Redis holds its SHA-256 (a dump of Redis gives no usable
cookie) with the user id, the CSRF token and the start time. The key's TTL is the idle time-out,
renewed on every request; the start time enforces the absolute one.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis import Redis

from infra import keys

IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class AdminSession:
    """One browser's session; `user_id` is None before login (the login form needs a CSRF token)."""

    key: str
    user_id: int | None
    csrf: str
    started: float


def _key(session_id: str) -> str:
    return keys.admin_session(hashlib.sha256(session_id.encode()).hexdigest())


def _user_index(user_id: int) -> str:
    return keys.admin_user_sessions(user_id)


class SessionStore:
    def __init__(
        self,
        redis: Redis,
        idle_seconds: int = IDLE_SECONDS,
        absolute_seconds: int = ABSOLUTE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis, self.idle, self.absolute, self.clock = redis, idle_seconds, absolute_seconds, clock

    def start(self, user_id: int | None) -> tuple[str, AdminSession]:
        """A new session under a new id (a login never reuses the id it arrived with)."""
        session_id = secrets.token_urlsafe(32)
        session = AdminSession(_key(session_id), user_id, secrets.token_urlsafe(32), self.clock())
        fields = {"csrf": session.csrf, "started": repr(session.started)}
        if user_id is not None:
            fields["user_id"] = str(user_id)
        pipe = self.redis.pipeline()
        pipe.hset(session.key, mapping=fields)
        pipe.expire(session.key, self.idle)
        if user_id is not None:
            pipe.sadd(_user_index(user_id), session.key)
            pipe.expire(_user_index(user_id), self.absolute)
        pipe.execute()
        return session_id, session

    def load(self, session_id: str) -> AdminSession | None:
        """The live session for a cookie's id, its idle time renewed; None if gone or too old."""
        if not session_id or len(session_id) > 100:
            return None
        key = _key(session_id)
        pipe = self.redis.pipeline()
        pipe.hgetall(key)
        pipe.expire(key, self.idle)
        fields, _ = pipe.execute()
        if not fields or b"csrf" not in fields:
            return None
        started = float(fields[b"started"])
        if self.clock() - started > self.absolute:
            self.redis.delete(key)
            return None
        user_id = int(fields[b"user_id"]) if b"user_id" in fields else None
        return AdminSession(key, user_id, fields[b"csrf"].decode(), started)

    def end(self, session: AdminSession) -> None:
        pipe = self.redis.pipeline()
        pipe.delete(session.key)
        if session.user_id is not None:
            pipe.srem(_user_index(session.user_id), session.key)
        pipe.execute()

    def end_all_for(self, user_id: int) -> int:
        """End every session of a user (disabled, password changed); returns how many were live."""
        index = _user_index(user_id)
        keys = list(self.redis.smembers(index))
        ended = self.redis.delete(*keys) if keys else 0
        self.redis.delete(index)
        return ended
