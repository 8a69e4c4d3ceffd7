"""Settings read once from the environment, validated, with safe defaults for local use.

Every other module receives a `Settings` (or the Flask config built from it); nothing else
reads `os.environ`. A malformed value raises `ConfigError` naming the variable, so a bad
deployment fails at start-up with one clear line instead of a stack trace at the first request.

One concern a module: `settings` (the fields, loading, validation), `values` (how a raw text
becomes a value), `smpp_links` (SMPP_CONNECTIONS), `sms_routes` (SMS_ROUTES and their prefixes).
"""

from config.settings import (
    DEV_ENCRYPTION_KEY,
    DEV_SECRET,
    ROOT,
    Settings,
    callback_url,
    demo_numbers,
    load_settings,
    parse_encryption_keys,
)
from config.smpp_links import SmppLink, parse_link, parse_smpp_links
from config.sms_routes import RouteSpec, Routing, gateway_kind, parse_routing
from config.values import ConfigError

__all__ = [
    "DEV_ENCRYPTION_KEY",
    "DEV_SECRET",
    "ROOT",
    "ConfigError",
    "RouteSpec",
    "Routing",
    "Settings",
    "SmppLink",
    "callback_url",
    "demo_numbers",
    "gateway_kind",
    "load_settings",
    "parse_encryption_keys",
    "parse_link",
    "parse_routing",
    "parse_smpp_links",
]
