"""Routing per operator: which gateway takes a message, and going round a gateway that is down.

A number's routes come from its prefix (config.Routing). A route that fails SMS_ROUTE_FAILURES
sends in a row is skipped for SMS_ROUTE_COOLDOWN_SECONDS; then one send, by one worker, probes
it, and a success (of a probe or of any send) brings it back. The state sits in Redis so that
every worker agrees; if Redis cannot answer, every route counts as up: a send is never stopped
for want of a health mark.

A failed route hands the message to the next one within the same job, so nothing waits on a dead
gateway while another works. The duplicate this can make is the one a retry makes anyway: a
route that timed out may have sent the message; a route that refused the connection did not.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import RedisError

from config import Routing
from gateway.base import Outcome, OutgoingSms, SendResult, SmsGateway
from infra import keys

log = logging.getLogger(__name__)

HOUR = 3600
COUNTS_KEPT_HOURS = 24


# Gateway kinds whose ids are unique whatever the route: Africa's Talking's (kept bare, as stored
# before routes existed, and used by adapters that report through its callbacks) and Kannel's,
# which are ours (the claim's `sira-` reference its delivery reports carry) or UUIDs (incoming).
BARE_IDS = frozenset({"africastalking", "kannel"})


def scoped_id(kind: str, gateway_id: str) -> str:
    """The id a message is stored under: its gateway's id, scoped by the gateway's kind, so that two
    aggregators' ids never collide. A delivery report comes through its kind's own callback, which
    scopes the id it reads the same way (see BARE_IDS for the kinds left bare).
    """
    if kind in BARE_IDS or ":" in kind:
        return gateway_id
    return f"{kind}:{gateway_id}"


@dataclass(frozen=True)
class Route:
    """One configured way out: a name, its gateway's kind, the gateway, and its price per part."""

    name: str
    kind: str
    gateway: SmsGateway
    cost: str = ""
    check_url: str = ""  # the gateway's endpoint, whose answering is the route's health check


@dataclass(frozen=True)
class Routed:
    """One send's outcome and the route that gave it (a send always tries one)."""

    result: SendResult
    route: Route
    tried: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteState:
    """What the admin sees of one route."""

    name: str
    kind: str
    cost: str
    health: str  # "up", "down" (skipped until its cool-down ends) or "probing"
    failures_in_a_row: int
    sent: int  # attempts in the last 24 hours
    failed: int  # of which failed (retry or held)

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.sent if self.sent else None


class RouteHealth:
    """Each route's failures in a row, its skip mark and its send counts, in Redis."""

    def __init__(self, failures_allowed: int, cooldown_seconds: int) -> None:
        self.failures_allowed = failures_allowed
        self.cooldown = cooldown_seconds

    def usable(self, redis: Redis, name: str) -> bool:
        """Up, or past its cool-down and this caller won the one probe; False while skipped."""
        try:
            down, failures = redis.mget(keys.route_down(name), keys.route_failures(name))
            if down:
                return False
            if int(failures or 0) < self.failures_allowed:
                return True
            return bool(redis.set(keys.route_probe(name), "1", nx=True, ex=self.cooldown))
        except RedisError as exc:
            log.warning("route %s: health unknown (%s); tried anyway", name, type(exc).__name__)
            return True

    def succeeded(self, redis: Redis, name: str) -> None:
        self._count(redis, name, failed=False, reset=True)

    def failed(self, redis: Redis, name: str) -> None:
        failures = self._count(redis, name, failed=True)
        try:
            if failures >= self.failures_allowed:
                with redis.pipeline() as pipe:
                    pipe.set(keys.route_down(name), "1", ex=self.cooldown)
                    pipe.delete(keys.route_probe(name))
                    pipe.execute()
                log.warning(
                    "route %s: %d failed sends in a row; skipped for %ds", name, failures, self.cooldown
                )
        except RedisError:
            pass

    def failed_check(self, redis: Redis, name: str) -> None:
        """The health check found the gateway unreachable: skip the route for a cool-down now,
        rather than after SMS_ROUTE_FAILURES messages have each tried it first."""
        try:
            with redis.pipeline() as pipe:
                pipe.set(keys.route_failures(name), self.failures_allowed)
                pipe.set(keys.route_down(name), "1", ex=self.cooldown)
                pipe.delete(keys.route_probe(name))
                pipe.execute()
        except RedisError as exc:
            log.warning("route %s: could not mark it down (%s)", name, type(exc).__name__)

    def attempted(self, redis: Redis, name: str) -> None:
        """A send the route answered for good (a refused number): counted, health unchanged."""
        self._count(redis, name, failed=None)

    def _count(self, redis: Redis, name: str, failed: bool | None, reset: bool = False) -> int:
        """Count a send; with `failed`, the route's failures in a row now (0 if Redis cannot say)."""
        counts = keys.route_counts(name, int(time.time()) // HOUR)
        try:
            # One round trip without MULTI/EXEC: counters, whose commands need not land together.
            with redis.pipeline(transaction=False) as pipe:
                if failed:
                    pipe.incr(keys.route_failures(name))
                    pipe.hincrby(counts, "failed", 1)
                pipe.hincrby(counts, "sent", 1)
                pipe.expire(counts, (COUNTS_KEPT_HOURS + 1) * HOUR)
                if reset:
                    pipe.delete(keys.route_failures(name), keys.route_down(name), keys.route_probe(name))
                replies = pipe.execute()
        except RedisError as exc:
            log.warning("route %s: could not count a send (%s)", name, type(exc).__name__)
            return 0
        return int(replies[0]) if failed else 0

    def states(self, redis: Redis, routes: Sequence[Route]) -> list[RouteState]:
        """Each route's health and last 24 hours, read in one round trip (raises RedisError)."""
        now = int(time.time()) // HOUR
        with redis.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.mget(keys.route_down(route.name), keys.route_failures(route.name))
                for hour in range(now - COUNTS_KEPT_HOURS + 1, now + 1):
                    pipe.hmget(keys.route_counts(route.name, hour), "sent", "failed")
            answers = iter(pipe.execute())
        states = []
        for route in routes:
            down, failures = next(answers)
            sent = failed = 0
            for _ in range(COUNTS_KEPT_HOURS):
                s, f = next(answers)
                sent, failed = sent + int(s or 0), failed + int(f or 0)
            in_a_row = int(failures or 0)
            health = "down" if down else "probing" if in_a_row >= self.failures_allowed else "up"
            states.append(RouteState(route.name, route.kind, route.cost, health, in_a_row, sent, failed))
        return states


class Router:
    """Sends a message by the first live route of its number, then the next, within a time budget."""

    def __init__(
        self, routes: Mapping[str, Route], routing: Routing, health: RouteHealth, budget_seconds: float
    ) -> None:
        self.routes = dict(routes)
        self.routing = routing
        self.health = health
        self.budget = budget_seconds

    def routes_for(self, e164: str) -> list[Route]:
        return [self.routes[name] for name in self.routing.names_for(e164)]

    def send(self, redis: Redis, sms: OutgoingSms) -> Routed:
        """Try the number's live routes in order until one takes the message; never raises for a
        gateway's failure. With none live, the first is tried anyway: a message is never held back
        only because every route was marked down."""
        routes = self.routes_for(sms.to)
        started = time.monotonic()
        answers: list[tuple[Route, SendResult]] = []
        for route in routes:
            if answers and time.monotonic() - started > self.budget:
                break  # the job's time-out must not cut a send short: the rest wait for the retry
            # Asked only now, when the route would be tried: a route's one probe is not spent on a
            # message an earlier route took. A number with one route tries it whatever its health
            # (below): asking Redis first would be a round trip for nothing.
            if len(routes) > 1 and not self.health.usable(redis, route.name):
                continue
            result = self._try(redis, route, sms)
            if result.outcome is Outcome.ACCEPTED:
                return Routed(result, route, (*(r.name for r, _ in answers), route.name))
            answers.append((route, result))
            log.info("route %s: %s (%s); next route", route.name, result.outcome, result.status)
        if not answers:  # every route skipped: the first is tried all the same
            return Routed(self._try(redis, routes[0], sms), routes[0], (routes[0].name,))
        route, result = _worst(answers)
        return Routed(result, route, tuple(r.name for r, _ in answers))

    def _try(self, redis: Redis, route: Route, sms: OutgoingSms) -> SendResult:
        """One send by one route, counted in its health: a refused number says nothing of the route."""
        result = route.gateway.send(sms)
        if result.outcome is Outcome.ACCEPTED:
            self.health.succeeded(redis, route.name)
        elif result.outcome is Outcome.PERMANENT:
            self.health.attempted(redis, route.name)
        else:
            self.health.failed(redis, route.name)
        return result


def reachable(url: str, timeout: float = 2.0) -> bool:
    """Whether the gateway's host accepts a connection on its port: no message, no credentials."""
    parts = urlsplit(url)
    if not parts.hostname:
        return True  # nothing to check against (an SDK's own URL): the sends will tell
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def _worst(answers: list[tuple[Route, SendResult]]) -> tuple[Route, SendResult]:
    """What the message must do when no route took it: held if a route holds our account (a
    coordinator must know), retried if any route may take it later, failed only if all refused it."""
    for outcome in (Outcome.HELD, Outcome.RETRY):
        for route, result in answers:
            if result.outcome is outcome:
                return route, result
    return answers[0]
