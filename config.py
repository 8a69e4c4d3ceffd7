"""Settings read once from the environment, validated, with safe defaults for local use.

Every other module receives a `Settings` (or the Flask config built from it); nothing else
reads `os.environ`. A malformed value raises `ConfigError` naming the variable, so a bad
deployment fails at start-up with one clear line instead of a stack trace at the first request.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
DEV_SECRET = "dev-only-secret-change-me"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    """What the service needs to run; one field per environment variable (upper-cased)."""

    env: str = "development"
    database_url: str = f"sqlite:///{ROOT / 'instance' / 'sira.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = DEV_SECRET
    phone_hash_key: str = DEV_SECRET
    ussd_service_code: str = "*384*7472#"
    ussd_session_ttl_seconds: int = 600
    resume_window_hours: int = 24
    redis_socket_timeout_seconds: float = 0.5
    default_region_code: str = "ML"
    sms_gateway: str = "africastalking"
    at_username: str = "sandbox"
    at_api_key: str = "emulator-key"
    at_api_url: str = "http://127.0.0.1:8025"
    at_timeout_seconds: float = 5.0
    sms_sender_provider: str = "SIRA"
    sms_sender_returnee: str = "INFO"
    sms_retry_intervals: str = "5,30,120,600"
    sms_job_timeout_seconds: int = 60
    sms_claim_lease_seconds: int = 120
    sms_max_attempts: int = 12
    outbox_sweep_seconds: int = 30
    worker_maintenance_seconds: int = 600
    spool_dir: str = str(ROOT / "instance" / "spool")
    spool_replay_seconds: int = 30
    database_connect_timeout_seconds: int = 2
    reminder_after_hours: int = 24
    expire_after_hours: int = 48
    deadline_check_seconds: int = 60
    public_base_url: str = "http://127.0.0.1:5000"
    callback_secret: str = ""

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def callback_secrets(self) -> tuple[str, ...]:
        """The valid first path segments of gateway callbacks (two during a rotation)."""
        return tuple(s.strip() for s in self.callback_secret.split(",") if s.strip())


_URL_SCHEMES = {
    "database_url": ("sqlite", "postgresql", "postgresql+psycopg"),
    "redis_url": ("redis", "rediss", "unix"),
    "at_api_url": ("http", "https"),
    "public_base_url": ("http", "https"),
}


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `environ` (default: the process environment) and explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = overrides.get(f.name, environ.get(f.name.upper()))
        if raw is None or raw == "":
            continue
        values[f.name] = _coerce(f.name, f.type, raw)
    url = str(values.get("database_url", ""))
    if url.startswith("postgresql://"):
        values["database_url"] = "postgresql+psycopg://" + url[len("postgresql://") :]
    settings = Settings(**values)
    _validate(settings)
    return settings


def _coerce(name: str, type_name: object, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    try:
        if type_name in ("int", int):
            return int(raw)
        if type_name in ("float", float):
            return float(raw)
    except ValueError:
        raise ConfigError(f"{name.upper()} must be a number, got {raw!r}") from None
    return raw


def _validate(s: Settings) -> None:
    for name, schemes in _URL_SCHEMES.items():
        value = getattr(s, name)
        scheme = urlsplit(value).scheme
        if scheme not in schemes:
            raise ConfigError(
                f"{name.upper()} must start with one of {', '.join(schemes)}:// (got {scheme or 'nothing'})"
            )
    if s.env not in ("development", "testing", "production"):
        raise ConfigError(f"ENV must be development, testing or production, got {s.env!r}")
    try:
        [int(x) for x in s.sms_retry_intervals.split(",")]
    except ValueError:
        raise ConfigError("SMS_RETRY_INTERVALS must be comma-separated seconds, e.g. 5,30,120,600") from None
    if not s.at_timeout_seconds < s.sms_job_timeout_seconds < s.sms_claim_lease_seconds:
        raise ConfigError(
            "AT_TIMEOUT_SECONDS < SMS_JOB_TIMEOUT_SECONDS < SMS_CLAIM_LEASE_SECONDS must hold:"
            " a send is cut off by its job time-out before the sweeper may take it back"
        )
    if s.sms_max_attempts < 1 or s.database_connect_timeout_seconds < 1:
        raise ConfigError("SMS_MAX_ATTEMPTS and DATABASE_CONNECT_TIMEOUT_SECONDS must be at least 1")
    for name in ("outbox_sweep_seconds", "worker_maintenance_seconds", "spool_replay_seconds"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name.upper()} must be at least 1")
    if s.ussd_session_ttl_seconds < 30 or s.resume_window_hours < 0:
        raise ConfigError("USSD_SESSION_TTL_SECONDS must be >= 30 and RESUME_WINDOW_HOURS >= 0")
    if s.is_production:
        for name in ("secret_key", "phone_hash_key"):
            value = getattr(s, name)
            if value == DEV_SECRET or len(value) < 32:
                raise ConfigError(
                    f"{name.upper()} must be set to a random value of 32+ characters in production"
                )
        if not s.callback_secrets or any(len(x) < 32 for x in s.callback_secrets):
            raise ConfigError(
                "CALLBACK_SECRET must be set in production: one or two random values of 32+ characters"
            )
