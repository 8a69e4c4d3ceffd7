"""RQ job (run by the worker's cron): the SMS routes' health check.

A route whose gateway does not even accept a connection is skipped at once, so that the next
messages do not each try it first. Only failure is acted on: a gateway that accepts connections
may still refuse every send, so a route comes back by a probe send or a success (gateway/routing.py).
"""

from __future__ import annotations

import logging

from rq import get_current_job

from gateway import reachable
from workers.context import job_context

log = logging.getLogger(__name__)


def check_routes() -> dict[str, bool]:
    """Check each route's endpoint; mark those that do not answer as down. Returns who answered."""
    ctx = job_context()
    redis = get_current_job().connection
    answered = {}
    for route in ctx.router.routes.values():
        answered[route.name] = not route.check_url or reachable(route.check_url)
        if not answered[route.name]:
            log.warning("route %s: its gateway does not answer; skipped for now", route.name)
            ctx.router.health.failed_check(redis, route.name)
    return answered
