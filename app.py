"""Application factory: `gunicorn "app:create_app()"` or `flask --app app ...`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import cli
from config import Settings, load_settings
from flows.engine import Engine, State
from flows.i18n import Catalogs
from flows.journeys import conversation
from flows.sms import SmsTexts
from infra.connection import redis_from_url
from infra.ratelimit import RateLimit
from infra.sealing import Sealer
from infra.spool import Spool
from infra.ussd_store import UssdStore
from services.transcripts import SEALING_PURPOSE
from web import NoCookieSession, admin, callbacks, db, health, kannel, orange_sms, sms, ussd


def create_app(overrides: Mapping[str, object] | None = None) -> Flask:
    """Build the app from the environment (and `overrides`, for tests); nothing happens at import."""
    settings: Settings = load_settings(**dict(overrides or {}))
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DATABASE_URL=settings.database_url,
        TESTING=settings.env == "testing",
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.session_interface = NoCookieSession()
    app.extensions["sira.settings"] = settings
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    db.init_app(app)
    redis = redis_from_url(settings.redis_url, settings.redis_socket_timeout_seconds)
    app.extensions["sira.redis"] = redis
    catalogs = Catalogs.load()
    app.extensions["sira.engine"] = Engine(conversation(), catalogs)
    app.extensions["sira.sms_texts"] = SmsTexts.from_settings(settings, catalogs)
    app.extensions["sira.ussd_store"] = UssdStore(
        redis,
        settings.ussd_session_ttl_seconds,
        settings.resume_window_hours * 3600,
        settings.secret_key,
        State.from_json,
    )
    app.extensions["sira.step_sealer"] = Sealer(settings.secret_key, SEALING_PURPOSE)
    app.extensions["sira.ussd_limit"] = RateLimit(
        "ussd", settings.ussd_rate_limit, settings.ussd_rate_window_seconds
    )
    app.extensions["sira.sms_limit"] = RateLimit(
        "sms", settings.sms_rate_limit, settings.sms_rate_window_seconds
    )
    if settings.trusted_proxies:  # the client's address is the one the last trusted proxy saw
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.extensions["sira.spool"] = Spool(settings.spool_dir, settings.secret_key)
    app.register_blueprint(health.bp)
    callbacks.register(
        app,
        [(ussd.bp, ""), (sms.bp, "/sms"), (orange_sms.bp, "/sms/orange"), (kannel.bp, kannel.PREFIX)],
        settings.callback_secrets,
        settings.callback_networks,
        settings.callback_max_bytes,
    )
    admin.init_app(app)
    cli.init_app(app)
    return app
