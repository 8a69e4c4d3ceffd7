"""The one place a Redis connection is built, with short time-outs.

A USSD step has a few seconds in all, so a Redis that hangs must fail fast and let the caller
fall back (the engine can rebuild a session from the gateway's `text` history).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from redis import ConnectionPool, Redis
from redis.connection import AbstractConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import Sentinel, SentinelManagedConnection

from infra.metrics import REDIS_ERRORS

# After a failure, calls fail at once for this long instead of each waiting for its time-out: a
# Redis that hangs would otherwise cost a USSD step one time-out per call (four on some steps).
COOLDOWN_SECONDS = 2.0

# This process's id, kept up to date across forks: `Direct` compares it on every call, where
# os.getpid() would be a system call each time.
_PROCESS = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PROCESS.__setitem__(0, os.getpid()))


class Breaker:
    """Remembers the last failure of one Redis, so that the next calls do not wait for it again."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.open_until = 0.0

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise RedisConnectionError("redis failed a moment ago; not trying again yet")

    def trip(self, kind: str = "read") -> None:
        REDIS_ERRORS.labels(kind).inc()
        self.open_until = time.monotonic() + self.cooldown


def redis_from_url(
    url: str,
    socket_timeout: float = 0.5,
    cooldown: float = COOLDOWN_SECONDS,
    sentinels: Sequence[tuple[str, int]] = (),
    master: str = "sira",
) -> Redis:
    """The web's Redis: short time-outs, and a breaker so that an outage costs one time-out, not many.

    With `sentinels`, the primary is the one Redis Sentinel names for `master` (REDIS_URL then
    gives only the database number and the password): after a failover, a connection that finds
    the old primary gone or read-only fails once, and the next one asks Sentinel again.
    """
    breaker = Breaker(cooldown)
    base = SentinelManagedConnection if sentinels else ConnectionPool.from_url(url).connection_class

    class GuardedConnection(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            breaker.check()
            try:
                super().connect()
            except (RedisConnectionError, RedisTimeoutError):
                breaker.trip("connect")
                raise

        def read_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            try:
                return super().read_response(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError):
                breaker.trip()
                raise

    options = {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout,
               "health_check_interval": 30, "connection_class": GuardedConnection}  # fmt: skip
    if sentinels:
        return _sentinel(sentinels, socket_timeout).master_for(master, **options, **_database_of(url))
    return Redis.from_url(url, **options)


def worker_redis(url: str, sentinels: Sequence[tuple[str, int]] = (), master: str = "sira") -> Redis:
    """The worker's connection: RQ blocks on the queues for minutes, so no short read time-out."""
    options = {"socket_timeout": None, "socket_connect_timeout": 5, "health_check_interval": 30}
    if sentinels:
        return _sentinel(sentinels, 5).master_for(master, **options, **_database_of(url))
    return Redis.from_url(url, **options)


def _sentinel(sentinels: Sequence[tuple[str, int]], timeout: float) -> Sentinel:
    return Sentinel(
        list(sentinels), sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout}
    )


def _database_of(url: str) -> dict[str, Any]:
    """What REDIS_URL still says when Sentinel names the host: the database, user and password."""
    parsed = parse_url(url)
    return {key: parsed[key] for key in ("db", "username", "password") if parsed.get(key) is not None}


class Direct:
    """A USSD step's Redis calls on a connection of the thread's own, without redis-py's client.

    A step makes one call (two on a dial), and on loopback redis-py's client layer (pool
    check-out with its readiness poll, retries, response callbacks) costs more CPU than the
    round trip itself. The connection is of the pool's own class, so time-outs, the breaker and
    health checks apply as to every other call; a failed call closes it, and the next one
    reconnects (or fails at once while the breaker is open). A call is never sent twice: a
    script that ran but whose reply was lost must not run again. A Redis restarted under load
    therefore fails each thread's next call once, like any outage (the breaker opens).
    """

    def __init__(self, redis: Redis, idle_check_seconds: float = 1.0) -> None:
        self._pool = redis.connection_pool
        self._local = threading.local()
        self.idle_check_seconds = idle_check_seconds

    def _connection(self) -> AbstractConnection:
        local = self._local
        conn = getattr(local, "connection", None)
        if conn is None or conn.pid != _PROCESS[0]:  # a forked process makes its own
            conn = local.connection = self._pool.connection_class(**self._pool.connection_kwargs)
            local.used_at = 0.0
        now = time.monotonic()
        # A socket idle for a while may have been closed by Redis (a restart, its idle time-out):
        # look before using it. A busy one is not polled: under load each extra system call is
        # also a hand-over of the GIL between the threads.
        if now - local.used_at > self.idle_check_seconds:
            self._ready(conn)
        else:
            conn.connect()  # a no-op when connected; else through the breaker
        local.used_at = now
        return conn

    def call(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send `commands` in one write and read their replies; an error reply is returned, not raised."""
        conn = self._connection()
        try:
            conn.send_packed_command(conn.pack_commands(commands))
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(conn.read_response())
                except ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            conn.disconnect()  # a reply may be left unread: never reuse the socket
            raise
        return replies

    @staticmethod
    def _ready(conn: AbstractConnection) -> None:
        """Check the connection as the pool checks one it hands out: a socket Redis closed is
        replaced quietly instead of failing a step and tripping the breaker. Connecting goes
        through the breaker."""
        conn.connect()
        try:
            if conn.can_read():  # end of file, or bytes nobody asked for
                raise RedisConnectionError("connection not ready")
        except (RedisConnectionError, RedisTimeoutError, OSError):
            conn.disconnect()
            conn.connect()


class DirectScript:
    """A Lua script run through `Direct`, by its digest, and sent whole only when Redis lacks it."""

    def __init__(self, direct: Direct, source: str) -> None:
        self.direct = direct
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[str], args: list[Any]) -> Any:
        (reply,) = self.direct.call(("EVALSHA", self.sha, len(keys), *keys, *args))
        if isinstance(reply, NoScriptError):  # a restarted or flushed Redis: EVAL caches it again
            (reply,) = self.direct.call(("EVAL", self.source, len(keys), *keys, *args))
        if isinstance(reply, ResponseError):
            raise reply
        return reply
