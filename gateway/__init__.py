"""SMS gateways: the interface jobs use, the adapters behind it, and the choice between them.

The send job asks `router_from_settings(settings)` for a router and calls its `send`: the router
picks, per number, among the routes of SMS_ROUTES (gateway/routing.py), or uses SMS_GATEWAY alone.
A route's kind, like SMS_GATEWAY, is either a name registered in `GATEWAYS` or the import path of
a factory (`package.module:factory`, called with the settings) for an adapter kept elsewhere; a
new gateway is one more entry in `GATEWAYS`, and a route of its kind needs nothing else.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from config import callback_url, gateway_kind
from gateway import kannel
from gateway.africastalking import AfricasTalkingGateway
from gateway.base import Outcome, OutgoingSms, SendResult, SmsGateway
from gateway.kannel import KannelGateway
from gateway.orange import OrangeGateway
from gateway.routing import Route, Routed, RouteHealth, Router, RouteState, reachable, scoped_id

if TYPE_CHECKING:
    from config import Settings

__all__ = [
    "GATEWAYS",
    "AfricasTalkingGateway",
    "KannelGateway",
    "OrangeGateway",
    "Outcome",
    "OutgoingSms",
    "Route",
    "RouteHealth",
    "RouteState",
    "Routed",
    "Router",
    "SendResult",
    "SmsGateway",
    "gateway_from_settings",
    "reachable",
    "router_from_settings",
    "scoped_id",
]


def _africastalking(settings: Settings) -> SmsGateway:
    return AfricasTalkingGateway(
        username=settings.at_username,
        api_key=settings.at_api_key,
        api_url=settings.at_api_url or None,
        timeout_seconds=settings.at_timeout_seconds,
    )


def _orange(settings: Settings) -> SmsGateway:
    return OrangeGateway(
        api_url=settings.orange_api_url,
        client_id=settings.orange_client_id,
        client_secret=settings.orange_client_secret,
        sender_address=settings.orange_sender_address,
        sender_name=settings.orange_sender_name,
        timeout_seconds=settings.orange_timeout_seconds,
    )


def _kannel(settings: Settings) -> SmsGateway:
    return KannelGateway(
        sendsms_url=settings.kannel_sendsms_url,
        username=settings.kannel_username,
        password=settings.kannel_password,
        dlr_url=callback_url(settings.public_base_url, kannel.DELIVERY_PATH, settings.callback_secrets),
        timeout_seconds=settings.kannel_timeout_seconds,
        dlr_mask=settings.kannel_dlr_mask,
        smsc=settings.kannel_smsc,
    )


@dataclasses.dataclass(frozen=True)
class Kind:
    """A registered gateway kind: how to build it from the settings, and which setting holds its
    endpoint (the routes' health check looks there). Its send time-out is a setting's rule
    (config/sms_routes.py, send_seconds)."""

    build: Callable[[Settings], SmsGateway]
    check_url: str


GATEWAYS: dict[str, Kind] = {
    "africastalking": Kind(_africastalking, "at_api_url"),
    "orange": Kind(_orange, "orange_api_url"),
    "kannel": Kind(_kannel, "kannel_sendsms_url"),
}


def gateway_from_settings(settings: Settings) -> SmsGateway:
    """Build the gateway named by SMS_GATEWAY; a bad name fails at start-up, not at the first SMS."""
    return _factory(settings.sms_gateway, "SMS_GATEWAY")(settings)


def router_from_settings(settings: Settings) -> Router:
    """Build every route of SMS_ROUTES (or SMS_GATEWAY alone) with its own settings, and the router
    that chooses between them; an unknown gateway kind fails at start-up."""
    routing = settings.routing
    routes = {}
    for spec in routing.routes:
        own = dataclasses.replace(settings, **dict(spec.options))
        factory = _factory(spec.kind, f"SMS_ROUTES route {spec.name}")
        kind = GATEWAYS.get(spec.kind)  # written as config.gateway_kind wrote it
        check_url = str(getattr(own, kind.check_url, "") or "") if kind else ""
        routes[spec.name] = Route(spec.name, spec.kind, factory(own), spec.cost, check_url)
    health = RouteHealth(settings.sms_route_failures, settings.sms_route_cooldown_seconds)
    # A route is tried only while a whole send through the slowest route still fits in the job.
    budget = settings.sms_job_timeout_seconds - settings.gateway_timeout_seconds
    return Router(routes, routing, health, budget_seconds=budget)


def _factory(name: str, variable: str) -> Callable[[Settings], SmsGateway]:
    name = gateway_kind(name)
    kind = GATEWAYS.get(name)
    factory = kind.build if kind else None
    if factory is None and ":" in name:
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"{variable}={name!r}: cannot import {attribute!r} from {module_name!r}"
            ) from exc
    if factory is None:
        known = ", ".join(sorted(GATEWAYS))
        raise ValueError(
            f"{variable}={name!r} is not a known SMS gateway (known: {known}, or module:factory)"
        )
    return factory
