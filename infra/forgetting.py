"""Forgetting a phone in Redis: its cached USSD profile, its resumable session, and a tombstone.

Erasure leaves a tombstone holding its time: a session that had begun by then belongs to the
erased person, wherever its state or steps still are; one begun later is a new life of the
number. The web and the workers (spool replay) both forget, so this sits below both.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection

from redis import Redis
from redis.exceptions import RedisError

from infra import keys

ERASED_TTL_SECONDS = 2 * 24 * 3600  # far longer than a step waits in the buffer, dead list aside


def erasure_mark() -> str:
    """What a tombstone holds: the erasure's time (epoch seconds), which sessions are compared to."""
    return repr(time.time())


def erased_at(mark: bytes | str | None) -> float | None:
    """The erasure time a tombstone holds; None if there is none (or it is unreadable)."""
    try:
        return float(mark) if mark else None
    except ValueError:
        return None


def erasure_times(redis: Redis, digests: Collection[str]) -> dict[str, float]:
    """When each of these phones was erased, for those that were (one MGET)."""
    digests = list(digests)
    marks = redis.mget([keys.ussd_erased(d) for d in digests]) if digests else []
    times = {d: erased_at(mark) for d, mark in zip(digests, marks, strict=True)}
    return {d: t for d, t in times.items() if t is not None}


def begun_before_erasure(started: float, erased: float | None) -> bool:
    """Whether a session that began at `started` (epoch seconds) is the erased person's."""
    return erased is not None and started <= erased


def forget_phone(redis: Redis, digest: str) -> None:
    """Erasure: drop the phone's resumable session and profile, and leave a tombstone so that
    its steps still in the buffer are not written back and its open sessions go at their next
    step (they are keyed by session, not by phone). Redis down: nothing to forget there."""
    with contextlib.suppress(RedisError):
        pipe = redis.pipeline()
        pipe.delete(keys.ussd_resume(digest), keys.ussd_profile(digest))
        pipe.set(keys.ussd_erased(digest), erasure_mark(), ex=ERASED_TTL_SECONDS)
        pipe.execute()


def forget_profiles(redis: Redis, *digests: str) -> None:
    """The returnees or their referrals changed: their next dial reads the database."""
    if digests:
        with contextlib.suppress(RedisError):
            redis.delete(*(keys.ussd_profile(d) for d in digests))
