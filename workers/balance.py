"""RQ job: ask Orange for the SMS bundle left, for the admin to read from Redis (infra/balance.py)."""

from __future__ import annotations

import json

from redis import Redis

from infra import keys
from infra.balance import FRESH_SECONDS, UNKNOWN_SECONDS
from models.base import utcnow
from workers.context import job_context


def refresh_balance() -> str:
    """RQ job: ask the gateway for its bundle and keep the answer (or that there was none)."""
    ctx = job_context()
    # The first route with a bundle (an Orange route of SMS_ROUTES), else SMS_GATEWAY's gateway.
    gateways = [route.gateway for route in ctx.router.routes.values()] + [ctx.gateway]
    ask = next((g.balance for g in gateways if callable(getattr(g, "balance", None))), None)
    units = ask() if callable(ask) else None
    redis = _job_redis()
    value = json.dumps({"units": units, "checked_at": utcnow().isoformat()})
    redis.set(keys.ORANGE_BALANCE, value, ex=FRESH_SECONDS if units is not None else UNKNOWN_SECONDS)
    redis.delete(keys.ORANGE_BALANCE_ASKED)
    return "unknown" if units is None else str(units)


def _job_redis() -> Redis:
    from rq import get_current_job

    return get_current_job().connection
