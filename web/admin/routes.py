"""Each SMS route's health, failure rate and cost, as the SMS log and the Queues page show them.

Health and failures come from Redis (gateway/routing.py keeps them for the workers); the cost of
the last 24 hours comes from the messages each route took: what the gateway billed when it says
(Africa's Talking), else the route's configured price per part (SMS_ROUTES' `cost`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config import RouteSpec, Settings
from gateway import RouteHealth
from models.base import utcnow
from models.messaging import OutboundSms
from web.admin.i18n import _

HEALTH = {"up": _("up"), "down": _("down: skipped until its cool-down ends"),
          "probing": _("failing: its next send is a probe"), "unknown": _("unknown (Redis does not answer)")}  # fmt: skip
_AMOUNT = re.compile(r"^\s*([A-Z]{3})\s*([0-9]+(?:\.[0-9]+)?)\s*$")


@dataclass(frozen=True)
class RouteRow:
    name: str
    kind: str
    health: str  # a key of HEALTH
    failures_in_a_row: int | None
    sent: int | None  # attempts in the last 24 hours (None: Redis does not answer)
    failure_rate: str  # "12 %", or "-" with no attempt
    price: str  # configured price of one part, "" if none
    accepted: int  # messages the route took in the last 24 hours
    cost: str  # what they cost, e.g. "XOF 125.00"; "-" if unknown


def route_rows(settings: Settings, redis: Redis, session: Session) -> list[RouteRow]:
    """One row per configured route (with no SMS_ROUTES, SMS_GATEWAY's one route)."""
    specs = settings.routing.routes
    health = RouteHealth(settings.sms_route_failures, settings.sms_route_cooldown_seconds)
    try:
        states = {s.name: s for s in health.states(redis, specs)}
    except RedisError:
        states = {}
    taken = _taken(session, specs)
    rows = []
    for spec in specs:
        state = states.get(spec.name)
        accepted, cost = taken.get(spec.name, (0, "-"))
        rate = state.failure_rate if state else None
        rows.append(RouteRow(
            spec.name, spec.kind, state.health if state else "unknown", state.failures_in_a_row if state else None,
            state.sent if state else None, "-" if rate is None else f"{rate:.0%}".replace("%", " %"),
            spec.cost, accepted, cost,
        ))  # fmt: skip
    return rows


def _taken(session: Session, specs: tuple[RouteSpec, ...]) -> dict[str, tuple[int, str]]:
    """Per route: messages accepted in the last 24 hours and their cost, summed per currency."""
    prices = {spec.name: spec.cost for spec in specs}
    since = utcnow() - timedelta(hours=24)
    grouped = session.execute(
        select(OutboundSms.route, OutboundSms.cost, func.count(), func.sum(OutboundSms.segments))
        .where(OutboundSms.accepted_at >= since, OutboundSms.route.is_not(None))
        .group_by(OutboundSms.route, OutboundSms.cost)
    ).all()
    counts: dict[str, int] = defaultdict(int)
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    unknown: set[str] = set()
    for route, billed, count, parts in grouped:
        counts[route] += count
        amount = _amount(billed, 1) if billed else _amount(prices.get(route, ""), int(parts or count))
        if amount is None:
            unknown.add(route)
        else:
            sums[route][amount[0]] += amount[1] * (count if billed else 1)
    return {
        route: (count, "-" if route in unknown or not sums[route]
                else ", ".join(f"{cur} {total:.2f}" for cur, total in sorted(sums[route].items())))
        for route, count in counts.items()
    }  # fmt: skip


def _amount(text: str, times: int) -> tuple[str, Decimal] | None:
    match = _AMOUNT.match(text or "")
    if not match:
        return None
    try:
        return match.group(1), Decimal(match.group(2)) * times
    except InvalidOperation:
        return None
