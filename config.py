"""Settings read once from the environment, validated, with safe defaults for local use.

Every other module receives a `Settings` (or the Flask config built from it); nothing else
reads `os.environ`. A malformed value raises `ConfigError` naming the variable, so a bad
deployment fails at start-up with one clear line instead of a stack trace at the first request.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent
DEV_SECRET = "dev-only-secret-change-me"
# Outside production, with no ENCRYPTION_KEYS, personal columns are encrypted with this key
# (derived from the public development secret, so it protects nothing but keeps one code path).
DEV_ENCRYPTION_KEY = ("dev", hashlib.sha256(f"sira:encryption:{DEV_SECRET}".encode()).digest())
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")


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
    previous_phone_hash_key: str = ""  # only while `flask rehash-phones` rotates the key
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
    encryption_keys: str = ""
    callback_max_bytes: int = 4096
    callback_allowed_networks: str = ""
    trusted_proxies: int = 0
    ussd_rate_limit: int = 30
    ussd_rate_window_seconds: int = 60
    sms_rate_limit: int = 20
    sms_rate_window_seconds: int = 600
    retention_transcript_days: int = 30
    retention_sms_days: int = 90
    retention_referral_days: int = 365
    retention_purge_seconds: int = 3600
    # Numbers the README's examples dial: in development only, not held to the USSD rate limit, so
    # that the scripted example can be run again and again.
    demo_numbers: str = "+22370000101,+22370000102,+22370000103"
    # Tests only: a USSD step that fails unexpectedly raises instead of ending politely, so that a
    # crash inside a step fails the test that caused it (refused in production).
    raise_step_errors: bool = False

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def rate_limit_exempt(self) -> tuple[str, ...]:
        """The numbers no rate limit holds: the demo numbers, in development only."""
        if self.env != "development":
            return ()
        return tuple(n.strip() for n in self.demo_numbers.split(",") if n.strip())

    @property
    def callback_secrets(self) -> tuple[str, ...]:
        """The valid first path segments of gateway callbacks (two during a rotation)."""
        return tuple(s.strip() for s in self.callback_secret.split(",") if s.strip())

    @property
    def encryption_keyring(self) -> tuple[tuple[str, bytes], ...]:
        """(key id, 32-byte key) pairs, current first; the development key if none are set."""
        if not self.encryption_keys.strip():
            return (DEV_ENCRYPTION_KEY,)
        return parse_encryption_keys(self.encryption_keys)

    @property
    def callback_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks gateway callbacks may come from; empty: from anywhere."""
        return tuple(
            ipaddress.ip_network(x.strip(), strict=False)
            for x in self.callback_allowed_networks.split(",")
            if x.strip()
        )


def parse_encryption_keys(value: str) -> tuple[tuple[str, bytes], ...]:
    """`kid:base64url-key,kid:...` -> pairs; the first encrypts, every one decrypts."""
    keys: list[tuple[str, bytes]] = []
    for entry in (e.strip() for e in value.split(",")):
        kid, sep, encoded = entry.partition(":")
        if not sep or not _KEY_ID.fullmatch(kid):
            raise ConfigError(
                "ENCRYPTION_KEYS must be comma-separated kid:key entries (kid: 1-16 letters, digits, - or _)"
            )
        encoded = encoded.strip()
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise ConfigError(f"ENCRYPTION_KEYS: key {kid!r} must be 32 random bytes in base64url")
        if kid in dict(keys):
            raise ConfigError(f"ENCRYPTION_KEYS: key id {kid!r} appears twice")
        keys.append((kid, key))
    return tuple(keys)


_URL_SCHEMES = {
    "database_url": ("sqlite", "postgresql", "postgresql+psycopg"),
    "redis_url": ("redis", "rediss", "unix"),
    "at_api_url": ("http", "https"),
    "public_base_url": ("http", "https"),
}


# Settings for which an empty value is a choice, not an unset variable: AT_API_URL="" means the
# SDK's own (live) URLs, where leaving it unset means the local emulator.
EMPTY_MEANS_SOMETHING = frozenset({"at_api_url"})


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `environ` (default: the process environment) and explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = overrides.get(f.name, environ.get(f.name.upper()))
        if raw is None or (raw == "" and f.name not in EMPTY_MEANS_SOMETHING):
            continue
        values[f.name] = _coerce(f.name, f.type, raw)
    url = str(values.get("database_url", ""))
    if url.startswith("postgresql://"):
        values["database_url"] = "postgresql+psycopg://" + url[len("postgresql://") :]
    settings = Settings(**values)
    _validate(settings)
    return settings


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(name: str, type_name: object, raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    if type_name in ("bool", bool):
        if raw.strip().lower() in _TRUE + _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(f"{name.upper()} must be true or false (1/0, yes/no), got {raw!r}")
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
        if not value and name in EMPTY_MEANS_SOMETHING:
            continue
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
    keyring = s.encryption_keyring  # a malformed ENCRYPTION_KEYS fails here, in any environment
    try:
        s.callback_networks  # noqa: B018 (parsed here so that a typo fails at start-up)
    except ValueError as exc:
        raise ConfigError(f"CALLBACK_ALLOWED_NETWORKS must be comma-separated CIDRs ({exc})") from None
    if s.callback_max_bytes < 512 or s.trusted_proxies < 0:
        raise ConfigError("CALLBACK_MAX_BYTES must be >= 512 and TRUSTED_PROXIES >= 0")
    limits = ("ussd_rate_limit", "ussd_rate_window_seconds", "sms_rate_limit", "sms_rate_window_seconds")
    if any(getattr(s, name) < 0 for name in limits) or not (
        s.ussd_rate_window_seconds and s.sms_rate_window_seconds
    ):
        raise ConfigError("rate limits must be >= 0 (0: no limit) and their windows > 0 seconds")
    retention = ("retention_transcript_days", "retention_sms_days", "retention_referral_days")
    if any(getattr(s, name) < 1 for name in retention) or s.retention_purge_seconds < 60:
        raise ConfigError("RETENTION_*_DAYS must be >= 1 and RETENTION_PURGE_SECONDS >= 60")
    if s.is_production:
        if s.raise_step_errors:
            raise ConfigError(
                "RAISE_STEP_ERRORS is for tests: in production a failed USSD step ends politely"
            )
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
        if not s.encryption_keys.strip() or DEV_ENCRYPTION_KEY[1] in dict(keyring).values():
            raise ConfigError(
                "ENCRYPTION_KEYS must be set in production: kid:key with 32 random bytes in base64url"
            )
