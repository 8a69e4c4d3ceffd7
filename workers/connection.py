"""The one place a Redis connection is built, with short time-outs.

A USSD step has a few seconds in all, so a Redis that hangs must fail fast and let the caller
fall back (the engine can rebuild a session from the gateway's `text` history).
"""

from __future__ import annotations

import time

from redis import ConnectionPool, Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# After a failure, calls fail at once for this long instead of each waiting for its time-out: a
# Redis that hangs would otherwise cost a USSD step one time-out per call (four on some steps).
COOLDOWN_SECONDS = 2.0


class Breaker:
    """Remembers the last failure of one Redis, so that the next calls do not wait for it again."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.open_until = 0.0

    def check(self) -> None:
        if time.monotonic() < self.open_until:
            raise RedisConnectionError("redis failed a moment ago; not trying again yet")

    def trip(self) -> None:
        self.open_until = time.monotonic() + self.cooldown


def redis_from_url(url: str, socket_timeout: float = 0.5, cooldown: float = COOLDOWN_SECONDS) -> Redis:
    """The web's Redis: short time-outs, and a breaker so that an outage costs one time-out, not many."""
    breaker = Breaker(cooldown)
    base = ConnectionPool.from_url(url).connection_class

    class GuardedConnection(base):  # type: ignore[valid-type, misc]
        def connect(self) -> None:
            breaker.check()
            try:
                super().connect()
            except (RedisConnectionError, RedisTimeoutError):
                breaker.trip()
                raise

        def read_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            try:
                return super().read_response(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError):
                breaker.trip()
                raise

    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
        connection_class=GuardedConnection,
    )


def worker_redis(url: str) -> Redis:
    """The worker's connection: RQ blocks on the queues for minutes, so no short read time-out."""
    return Redis.from_url(url, socket_timeout=None, socket_connect_timeout=5, health_check_interval=30)
