"""The SMS bundle left at Orange, as the last background check found it, kept a few minutes in Redis.

The admin only ever reads Redis: a slow or unreachable Orange must not slow a page. A page that
finds nothing fresh asks for a refresh (one job at a time, `workers/balance.py`), and shows
"unknown" until it lands.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from infra import keys, queues

log = logging.getLogger(__name__)

FRESH_SECONDS = 300  # a known balance is shown this long
UNKNOWN_SECONDS = 60  # after a failed check, this long before asking Orange again
JOB_ID = "orange-balance"


@dataclass(frozen=True)
class Balance:
    units: int | None  # None: Orange did not answer
    checked_at: datetime


def cached_balance(redis: Redis) -> Balance | None:
    """The last balance Orange gave, while fresh; asks for a refresh when there is none. Never raises."""
    try:
        raw = redis.get(keys.ORANGE_BALANCE)
        if raw is None:
            if redis.set(keys.ORANGE_BALANCE_ASKED, "1", nx=True, ex=UNKNOWN_SECONDS):
                Queue(queues.DEFAULT, connection=redis).enqueue(
                    "workers.balance.refresh_balance", job_id=JOB_ID, job_timeout=60, result_ttl=60
                )
            return None
        data = json.loads(raw)
        return Balance(data["units"], datetime.fromisoformat(data["checked_at"]))
    except (RedisError, ValueError, KeyError, TypeError) as exc:
        log.warning("orange balance not read: %s", type(exc).__name__)
        return None
