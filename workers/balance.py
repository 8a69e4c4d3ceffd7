"""The SMS bundle left at Orange, asked in the background and kept a few minutes in Redis.

The admin only ever reads Redis: a slow or unreachable Orange must not slow a page. A page that
finds nothing fresh asks for a refresh (one job at a time), and shows "unknown" until it lands.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from models.base import utcnow
from workers import queues
from workers.context import job_context

log = logging.getLogger(__name__)

KEY = "sira:orange:balance"
ASKED_KEY = "sira:orange:balance:asked"  # set while a refresh is on its way, so pages ask once
FRESH_SECONDS = 300  # a known balance is shown this long
UNKNOWN_SECONDS = 60  # after a failed check, this long before asking Orange again
JOB_ID = "orange-balance"


@dataclass(frozen=True)
class Balance:
    units: int | None  # None: Orange did not answer
    checked_at: datetime


def refresh_balance() -> str:
    """RQ job: ask the gateway for its bundle and keep the answer (or that there was none)."""
    ctx = job_context()
    ask = getattr(ctx.gateway, "balance", None)
    units = ask() if callable(ask) else None
    redis = _job_redis()
    value = json.dumps({"units": units, "checked_at": utcnow().isoformat()})
    redis.set(KEY, value, ex=FRESH_SECONDS if units is not None else UNKNOWN_SECONDS)
    redis.delete(ASKED_KEY)
    return "unknown" if units is None else str(units)


def cached_balance(redis: Redis) -> Balance | None:
    """The last balance Orange gave, while fresh; asks for a refresh when there is none. Never raises."""
    try:
        raw = redis.get(KEY)
        if raw is None:
            if redis.set(ASKED_KEY, "1", nx=True, ex=UNKNOWN_SECONDS):
                Queue(queues.DEFAULT, connection=redis).enqueue(
                    "workers.balance.refresh_balance", job_id=JOB_ID, job_timeout=60, result_ttl=60
                )
            return None
        data = json.loads(raw)
        return Balance(data["units"], datetime.fromisoformat(data["checked_at"]))
    except (RedisError, ValueError, KeyError, TypeError) as exc:
        log.warning("orange balance not read: %s", type(exc).__name__)
        return None


def _job_redis() -> Redis:
    from rq import get_current_job

    return get_current_job().connection
