"""The one place a Redis connection is built, with short time-outs.

A USSD step has a few seconds in all, so a Redis that hangs must fail fast and let the caller
fall back (the engine can rebuild a session from the gateway's `text` history).
"""

from __future__ import annotations

from redis import Redis


def redis_from_url(url: str, socket_timeout: float = 0.5) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        health_check_interval=30,
    )


def worker_redis(url: str) -> Redis:
    """The worker's connection: RQ blocks on the queues for minutes, so no short read time-out."""
    return Redis.from_url(url, socket_timeout=None, socket_connect_timeout=5, health_check_interval=30)
