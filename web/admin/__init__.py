"""The admin web under /admin/: coordinators, viewers and providers' focal points."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, Response, send_from_directory

from web.admin import (  # noqa: F401  (their views register on the blueprint)
    agents,
    audit_log,
    dashboard,
    export,
    i18n,
    labels,
    passwords,
    providers,
    queues,
    referrals,
    returnees,
    simulator,
    sms_log,
    users,
    ussd,
)
from web.admin.access import bp, security_headers
from web.admin.cli import create_user

STATIC = Path(__file__).parent / "static"


def favicon() -> Response:
    """Every browser asks for /favicon.ico; a 404 on each page view would only fill the logs."""
    return send_from_directory(STATIC, "favicon.ico", mimetype="image/vnd.microsoft.icon", max_age=86400)


def init_app(app: Flask) -> None:
    """Register the blueprint, its headers hook and CLI."""
    app.config.setdefault("ADMIN_COOKIE_SECURE", True)
    i18n.init_app(app)
    labels.init_app(app)
    app.register_blueprint(bp)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    app.after_request(security_headers)
    app.cli.add_command(create_user)
