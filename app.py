"""Application factory: `gunicorn "app:create_app()"` or `flask --app app ...`."""

from __future__ import annotations

from collections.abc import Mapping

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import cli
from config import ConfigError, Settings, load_settings
from flows.engine import Engine, State
from flows.i18n import Catalogs
from flows.journeys import conversation
from flows.sms import SmsTexts
from infra.connection import redis_from_url
from infra.logs import configure_logging
from infra.queues import Outbox
from infra.ratelimit import RateLimit
from infra.sealing import Keyring, Sealer
from infra.spool import Spool
from infra.ussd_store import UssdStore
from models.db import make_session_factory
from models.phone import PhoneNumber
from services.converse import Converse
from services.transcripts import SEALING_PURPOSE
from web import (
    NoCookieSession,
    admin,
    callbacks,
    context,
    db,
    health,
    kannel,
    metrics,
    orange_sms,
    request_ids,
    sms,
    ussd,
)
from web.admin.i18n import ADMIN_LANGUAGES
from web.admin.sessions import SessionStore
from web.admin.throttle import LoginThrottle
from web.context import Sira


def collaborators(settings: Settings) -> Sira:
    """What the app is made of, each built once from the settings."""
    redis = redis_from_url(
        settings.redis_url,
        settings.redis_socket_timeout_seconds,
        sentinels=settings.sentinel_addresses,
        master=settings.redis_sentinel_master,
    )
    sessions = make_session_factory(
        settings.database_url, Keyring(settings.encryption_keyring), settings.database_connect_timeout_seconds
    )
    catalogs = Catalogs.load()
    engine = Engine(conversation(), catalogs)
    sms_texts = SmsTexts.from_settings(settings, catalogs)
    ussd_store = UssdStore(
        redis,
        settings.ussd_session_ttl_seconds,
        settings.resume_window_hours * 3600,
        settings.secret_key,
        State.from_json,
        remembered=settings.ussd_remembered_states,
    )
    exempt = frozenset(PhoneNumber.parse(n, settings).digest for n in settings.rate_limit_exempt)
    ussd_limit = RateLimit("ussd", settings.ussd_rate_limit, settings.ussd_rate_window_seconds, exempt)
    step_sealer = Sealer(settings.secret_key, SEALING_PURPOSE)
    outbox = Outbox.from_settings(redis, settings)
    return Sira(
        settings=settings,
        sessions=sessions,
        redis=redis,
        outbox=outbox,
        engine=engine,
        sms_texts=sms_texts,
        ussd_store=ussd_store,
        converse=Converse(settings, engine, ussd_store, step_sealer, outbox, sms_texts, ussd_limit, sessions),
        ussd_limit=ussd_limit,
        sms_limit=RateLimit("sms", settings.sms_rate_limit, settings.sms_rate_window_seconds),
        spool=Spool(settings.spool_dir, settings.secret_key),
        admin_catalogs=Catalogs.load(domain="admin", languages=ADMIN_LANGUAGES),
        admin_sessions=SessionStore(redis),
        login_throttle=LoginThrottle(
            redis,
            settings.login_free_failures,
            settings.login_max_delay_seconds,
            settings.password_checks,
            settings.password_check_wait_seconds,
        ),
    )


class SettingsRefused(ConfigError, click.ClickException):
    """A setting refused at start-up: still a ConfigError to the caller (gunicorn, tests), and to the
    `flask` command a usage error it prints as one line, without a traceback, before exiting."""

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message)


def create_app(overrides: Mapping[str, object] | None = None) -> Flask:
    """Build the app from the environment (and `overrides`, for tests); nothing happens at import."""
    try:
        settings: Settings = load_settings(**dict(overrides or {}))
    except ConfigError as exc:
        raise SettingsRefused(str(exc)) from None
    app = Flask(__name__, instance_relative_config=True)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DATABASE_URL=settings.database_url,
        TESTING=settings.env == "testing",
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.session_interface = NoCookieSession()
    configure_logging(settings.log_format)
    if settings.trusted_proxies:  # the client's address is the one the last trusted proxy saw
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    context.init_app(app, collaborators(settings))
    request_ids.init_app(app)
    db.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
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
