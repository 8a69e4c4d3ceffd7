"""The admin web under /admin/: coordinators, viewers and providers' focal points."""

from __future__ import annotations

from flask import Flask

from web.admin import (  # noqa: F401  (their views register on the blueprint)
    audit_log,
    dashboard,
    export,
    i18n,
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
from web.admin.sessions import SessionStore
from web.admin.throttle import LoginThrottle


def init_app(app: Flask) -> None:
    """Register the blueprint, its Redis session store and login throttle, its headers hook and CLI."""
    app.config.setdefault("ADMIN_COOKIE_SECURE", True)
    settings = app.extensions["sira.settings"]
    app.extensions["sira.admin_sessions"] = SessionStore(app.extensions["sira.redis"])
    app.extensions["sira.login_throttle"] = LoginThrottle(
        app.extensions["sira.redis"],
        settings.login_free_failures,
        settings.login_max_delay_seconds,
        settings.password_checks,
        settings.password_check_wait_seconds,
    )
    i18n.init_app(app)
    app.register_blueprint(bp)
    app.after_request(security_headers)
    app.cli.add_command(create_user)
