"""Where the gateway's callbacks are served: behind a secret first path segment in production.

Africa's Talking does not sign its callbacks, so the URLs given to it carry a long random
secret (`/<secret>/ussd`, `/<secret>/sms/incoming`...). A wrong or missing secret is a 404
that writes nothing; the comparison takes the same time whatever the guess. Two secrets may be
valid at once, so that one can be rotated without dropping callbacks.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Flask, abort

SEGMENT = "callback_secret"


def register(app: Flask, blueprints: list[tuple[Blueprint, str]], secrets: tuple[str, ...]) -> None:
    """Register the callback blueprints, each under its prefix, behind the secret if there is one."""
    if not secrets:
        for blueprint, prefix in blueprints:
            app.register_blueprint(blueprint, url_prefix=prefix or None)
        return
    for blueprint, prefix in blueprints:
        app.register_blueprint(blueprint, url_prefix=f"/<{SEGMENT}>{prefix}")
    encoded = [s.encode() for s in secrets]

    @app.url_value_preprocessor
    def _check_secret(_endpoint: str | None, values: dict | None) -> None:
        if values is None or SEGMENT not in values:
            return
        given = values.pop(SEGMENT).encode()
        if not any([hmac.compare_digest(given, secret) for secret in encoded]):  # every one compared
            abort(404)


def callback_url(base_url: str, path: str, secrets: tuple[str, ...]) -> str:
    """The URL a gateway (or the terminal phone) posts `path` to."""
    base = base_url.rstrip("/")
    return f"{base}/{secrets[0]}{path}" if secrets else f"{base}{path}"
