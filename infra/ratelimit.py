"""Per-phone rate limits in Redis: a fixed window, counted with INCR, at most `limit` a window.

A phone that floods the service (a stuck handset, a script, someone running up our SMS bill)
is slowed down without slowing anyone else. Keys hold the keyed phone hash, never the number.
A USSD step reads the count in the store's read pipeline and counts itself in the script that
saves its state (infra/ussd_store.py), so the limit adds no round trip; an SMS costs one pipelined
INCR+EXPIRE. Redis down means no limit: the service matters more than the cap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError

from infra import keys


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` requests of `kind` per phone in each `window` seconds; a limit of 0 is none."""

    kind: str
    limit: int
    window: int
    exempt: frozenset[str] = frozenset()  # phone digests never limited (the demo numbers, in development)

    def applies_to(self, phone_digest: str) -> bool:
        return bool(self.limit) and phone_digest not in self.exempt

    def key(self, phone_digest: str, now: float | None = None) -> str:
        slot = int((time.time() if now is None else now) // self.window)
        return keys.rate_limit(self.kind, phone_digest, slot)

    def stage(self, pipe: Pipeline, phone_digest: str) -> bool:
        """Queue the count on `pipe`; its two results end the pipeline's. False: nothing queued."""
        if not self.applies_to(phone_digest):
            return False
        key = self.key(phone_digest)
        pipe.incr(key)
        pipe.expire(key, self.window + 1)
        return True

    def exceeded(self, count: int) -> bool:
        return bool(self.limit) and int(count) > self.limit

    def hit(self, redis: Redis, phone_digest: str) -> bool:
        """Count one request in one round trip; True when the phone is over its limit."""
        pipe = redis.pipeline(transaction=False)
        if not self.stage(pipe, phone_digest):
            return False
        try:
            count, _ = pipe.execute()
        except RedisError:
            return False
        return self.exceeded(count)
