"""Where the gateway's callbacks are served: behind a secret path, from allowed networks, small.

Africa's Talking does not sign its callbacks, so the URLs given to it carry a long random
secret (`/<secret>/ussd`, `/<secret>/sms/incoming`...). A wrong or missing secret is a 404
that writes nothing; the comparison takes the same time whatever the guess. Two secrets may be
valid at once, so that one can be rotated without dropping callbacks.

Optionally, only the gateway's networks may call (`CALLBACK_ALLOWED_NETWORKS`): a request from
elsewhere gets the same 404 as a wrong secret. Behind a reverse proxy the address checked is the
one `ProxyFix` resolved from `X-Forwarded-For` for `TRUSTED_PROXIES` hops. Every callback body
is capped (`CALLBACK_MAX_BYTES`): a gateway's form is a few hundred bytes.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Sequence

from flask import Blueprint, Flask, Response, abort, request
from werkzeug.exceptions import RequestEntityTooLarge

from config import callback_url
from web import plain

__all__ = ["allowed", "callback_url", "register"]

SEGMENT = "callback_secret"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def register(
    app: Flask,
    blueprints: list[tuple[Blueprint, str]],
    secrets: tuple[str, ...],
    networks: Sequence[Network] = (),
    max_bytes: int | None = None,
) -> None:
    """Register the callback blueprints, each under its prefix, behind the secret if there is one."""
    names = {blueprint.name for blueprint, _prefix in blueprints}
    for blueprint, prefix in blueprints:
        url_prefix = f"/<{SEGMENT}>{prefix}" if secrets else prefix or None
        app.register_blueprint(blueprint, url_prefix=url_prefix)
    _guard(app, names, tuple(networks), max_bytes)
    if not secrets:
        return
    encoded = [s.encode() for s in secrets]

    @app.url_value_preprocessor
    def _check_secret(_endpoint: str | None, values: dict | None) -> None:
        if values is None or SEGMENT not in values:
            return
        given = values.pop(SEGMENT).encode()
        if not any([hmac.compare_digest(given, secret) for secret in encoded]):  # every one compared
            abort(404)


def _guard(app: Flask, names: set[str], networks: tuple[Network, ...], max_bytes: int | None) -> None:
    """Refuse, before any view runs, callbacks from outside `networks` or larger than `max_bytes`."""

    @app.before_request
    def _check_origin_and_size() -> Response | None:
        if request.blueprint not in names:
            return None
        if networks and not allowed(request.remote_addr, networks):
            abort(404)
        if max_bytes is not None:
            request.max_content_length = max_bytes + 1
            length = request.content_length
            if length is not None:  # the body is cut at its Content-Length: the header says it all
                if length > max_bytes:
                    return _too_large(max_bytes)
            # Chunked: read (at most one byte more than the cap) now, since werkzeug silently
            # truncates such a body at the cap, and a truncated SMS must be refused, not stored.
            elif len(request.get_data(cache=True)) > max_bytes:
                return _too_large(max_bytes)
        return None

    @app.errorhandler(RequestEntityTooLarge)
    def _body_too_large(exc: RequestEntityTooLarge) -> Response | RequestEntityTooLarge:
        if request.blueprint in names and max_bytes is not None:
            return _too_large(max_bytes)
        return exc


def _too_large(max_bytes: int) -> Response:
    return plain(f"request body larger than {max_bytes} bytes", 413)


def allowed(address: str | None, networks: Sequence[Network]) -> bool:
    """Whether `address` (as the WSGI server or ProxyFix gives it) is in one of `networks`."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
