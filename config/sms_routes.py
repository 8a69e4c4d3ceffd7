"""SMS routes: which gateway takes a message, by the operator of its number (SMS_ROUTES,
SMS_ROUTE_PREFIXES), and how long a send through each kind may take.

    SMS_ROUTES="at=africastalking; orange=orange?api_url=https://api.orange.com&cost=XOF 20"
    SMS_ROUTE_PREFIXES="7 82-84 90-94=orange,at; 6 89 95-99=at,orange; 50=at; *=at"

A route is a name, a gateway kind (a name of gateway.GATEWAYS) and options: each option is that
kind's setting without its prefix (api_url for AT_API_URL or ORANGE_API_URL); an option not given
takes the setting's own value. `cost` is the route's price of one SMS part, shown to the admin.
A prefix is matched against the number's digits after Mali's +223 (or, written with +, against
the whole E.164 number); the longest wins; `*` is every other number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from config.values import coerce

if TYPE_CHECKING:
    from config.settings import Settings

# The prefix of a gateway kind's settings, where it is not the kind's name and "_".
SETTING_PREFIXES = {"africastalking": "at_"}
_ROUTE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,29}")
_PREFIX = re.compile(r"(\+?\d{1,15})(?:-(\d{1,15}))?")
MALI = "+223"


@dataclass(frozen=True)
class RouteSpec:
    """One route as configured: its name, its gateway kind, and the settings it overrides."""

    name: str
    kind: str
    options: tuple[tuple[str, object], ...] = ()  # (Settings field, value)
    cost: str = ""  # price of one SMS part, as the operator bills it ("XOF 20")


@dataclass(frozen=True)
class Routing:
    """The routes by name, in the order written, and the ordered route names of each prefix."""

    routes: tuple[RouteSpec, ...]
    prefixes: Mapping[str, tuple[str, ...]]  # "7" -> ("orange", "at"); "*" -> the default list

    def names_for(self, e164: str) -> tuple[str, ...]:
        """The routes to try for a number, in order: its longest matching prefix's, else the default."""
        candidates = [e164] + ([e164[len(MALI) :]] if e164.startswith(MALI) else [])
        best = ""
        for prefix in self.prefixes:
            if prefix != "*" and len(prefix) > len(best) and any(c.startswith(prefix) for c in candidates):
                best = prefix
        return self.prefixes[best or "*"]


def gateway_kind(written: str) -> str:
    """A gateway kind as every part of Sira compares it: lower case whatever was written (Orange,
    AfricasTalking), except a `module:factory` kind, whose names keep their case."""
    written = written.strip()
    return written if ":" in written else written.lower()


def parse_routing(s: Settings) -> Routing:
    """SMS_ROUTES and SMS_ROUTE_PREFIXES -> Routing; without routes, SMS_GATEWAY for every number."""
    if not s.sms_routes.strip():
        if s.sms_route_prefixes.strip():
            raise ValueError("SMS_ROUTE_PREFIXES names routes, so SMS_ROUTES must define them")
        kind = gateway_kind(s.sms_gateway)
        return Routing((RouteSpec(kind[:30], kind),), {"*": (kind[:30],)})
    types = {f.name: f.type for f in fields(s)}
    routes = tuple(
        _route(entry.strip(), types) for entry in re.split(r"[;\n]", s.sms_routes) if entry.strip()
    )
    names = [r.name for r in routes]
    if len(set(names)) != len(names):
        raise ValueError("two routes have the same name")
    prefixes: dict[str, tuple[str, ...]] = {}
    for entry in (e.strip() for e in re.split(r"[;\n]", s.sms_route_prefixes) if e.strip()):
        keys, sep, value = entry.partition("=")
        chosen = tuple(n.strip() for n in value.split(",") if n.strip())
        unknown = [n for n in chosen if n not in names]
        if not sep or not chosen or unknown:
            raise ValueError(f"{entry!r}: must be prefixes=route,route... with routes of SMS_ROUTES")
        for key in keys.replace(",", " ").split():
            for prefix in _expand(key):
                if prefix in prefixes:
                    raise ValueError(f"prefix {prefix} appears twice")
                prefixes[prefix] = chosen
    prefixes.setdefault("*", tuple(names))
    return Routing(routes, prefixes)


def _route(entry: str, types: Mapping[str, object]) -> RouteSpec:
    head, _, query = entry.partition("?")
    name, sep, kind = (x.strip() for x in head.partition("="))
    kind = gateway_kind(kind)
    if not sep or not _ROUTE_NAME.fullmatch(name) or not kind:
        raise ValueError(f"{entry[:40]!r}: must be name=kind?option=value&... (name: a-z, 0-9, _ or -)")
    prefix = SETTING_PREFIXES.get(kind, f"{kind}_")
    options: list[tuple[str, object]] = []
    cost = ""
    for key, raw in parse_qsl(query, keep_blank_values=True):
        if key == "cost":
            cost = raw.strip()[:30]
            continue
        setting = prefix + key
        if setting not in types:
            raise ValueError(f"route {name}: {kind} has no setting {key!r}")
        options.append((setting, coerce(f"route {name}: {key}", types[setting], raw)))
    return RouteSpec(name, kind, tuple(options), cost)


def _expand(key: str) -> list[str]:
    """'90-94' -> 90, 91, 92, 93, 94; '7' -> 7; '*' -> *."""
    if key == "*":
        return [key]
    match = _PREFIX.fullmatch(key)
    if match is None:
        raise ValueError(f"{key!r} is not a prefix (digits, a range like 90-94, or *)")
    first, last = match.group(1), match.group(2)
    if last is None:
        return [first]
    if first.startswith("+") or len(first) != len(last) or int(first) > int(last):
        raise ValueError(f"{key!r}: a range joins two prefixes of the same length, the smaller first")
    return [str(n).zfill(len(first)) for n in range(int(first), int(last) + 1)]


def send_seconds(s: Settings, kind: str) -> float:
    """How long one send through a route of `kind` may wait for answers, with `s` its settings
    (a `module:factory` kind is given Africa's Talking's time-out)."""
    if kind == "kannel":
        return s.kannel_timeout_seconds
    if kind == "orange":  # four calls in a row at most: token, send, renewed token, send again
        return 4 * s.orange_timeout_seconds
    return s.at_timeout_seconds


def slowest_send_seconds(s: Settings) -> float:
    """The longest a send through the slowest route in use may wait, each route with its own settings."""
    return max(send_seconds(replace(s, **dict(r.options)), r.kind) for r in s.routing.routes)
