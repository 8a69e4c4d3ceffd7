"""`Settings`: one field per environment variable, loaded and validated once (`load_settings`)."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache, cached_property
from pathlib import Path
from urllib.parse import urlsplit

from config.smpp_links import SmppLink, parse_smpp_links
from config.sms_routes import Routing, parse_routing, slowest_send_seconds
from config.values import ConfigError, coerce

ROOT = Path(__file__).resolve().parent.parent  # the repository
DEMO_NUMBERS = ROOT / "seed" / "demo_numbers.txt"
DEV_SECRET = "dev-only-secret-change-me"
# Outside production, with no ENCRYPTION_KEYS, personal columns are encrypted with this key
# (derived from the public development secret, so it protects nothing but keeps one code path).
DEV_ENCRYPTION_KEY = ("dev", hashlib.sha256(f"sira:encryption:{DEV_SECRET}".encode()).digest())
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,16}")


@dataclass(frozen=True)
class Settings:
    """What the service needs to run; one field per environment variable (upper-cased).

    Lists are parsed once: a comma-separated number list is a tuple field, and the lists read
    from text (secrets, networks, prefixes, keys, links) are cached properties, parsed at
    start-up by `_validate` and never again at a use site."""

    env: str = "development"
    database_url: str = f"sqlite:///{ROOT / 'instance' / 'sira.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str = DEV_SECRET
    phone_hash_key: str = DEV_SECRET
    previous_phone_hash_key: str = ""  # only while `flask rehash-phones` rotates the key
    ussd_service_code: str = "*384*7472#"
    ussd_session_ttl_seconds: int = 600
    # States each web process keeps of the sessions it saved last, so a session's next step skips
    # its Redis read (0: none, every step reads Redis); see infra/ussd_store.py and bench/README.md.
    ussd_remembered_states: int = 10_000
    resume_window_hours: int = 24
    redis_socket_timeout_seconds: float = 0.5
    # host:port of each Redis Sentinel, comma-separated; empty: REDIS_URL names the Redis itself.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "sira"  # the name the Sentinels monitor the primary under
    default_region_code: str = "ML"
    sms_gateway: str = "africastalking"
    at_username: str = "sandbox"
    at_api_key: str = "emulator-key"
    at_api_url: str = "http://127.0.0.1:8025"
    at_timeout_seconds: float = 5.0
    orange_api_url: str = "http://127.0.0.1:8025"
    orange_client_id: str = "emulator-client"
    orange_client_secret: str = "emulator-secret"
    orange_sender_address: str = ""  # our Orange number: no default, required with an Orange route
    orange_sender_name: str = "SIRA"
    orange_timeout_seconds: float = 5.0
    kannel_sendsms_url: str = "http://127.0.0.1:13013/cgi-bin/sendsms"
    kannel_username: str = "sira"
    kannel_password: str = ""
    kannel_dlr_mask: int = 31
    kannel_smsc: str = ""
    kannel_timeout_seconds: float = 5.0
    # Routes per operator (see RouteSpec): empty means one route, SMS_GATEWAY, for every number.
    sms_routes: str = ""
    sms_route_prefixes: str = ""
    sms_route_failures: int = 3  # failed sends in a row before a route is skipped
    sms_route_cooldown_seconds: int = 60  # how long a failing route is skipped before a probe
    sms_sender_provider: str = "SIRA"
    sms_sender_returnee: str = "INFO"
    sms_retry_intervals: tuple[int, ...] = (5, 30, 120, 600)  # SMS_RETRY_INTERVALS="5,30,120,600"
    sms_job_timeout_seconds: int = 60
    sms_claim_lease_seconds: int = 120
    sms_max_attempts: int = 12
    outbox_sweep_seconds: int = 30
    worker_maintenance_seconds: int = 600
    spool_dir: str = str(ROOT / "instance" / "spool")
    spool_replay_seconds: int = 30
    backup_dir: str = str(ROOT / "instance" / "backups")  # where `flask backup` writes by default
    database_connect_timeout_seconds: int = 2
    reminder_after_hours: int = 24
    expire_after_hours: int = 48
    deadline_check_seconds: int = 60
    # Follow-ups of outcomes: days after a referral closes when the returnee is asked by SMS whether
    # they are still served (FOLLOW_UP_DAYS="30,90"; empty: none), and how long an answer is waited for.
    follow_up_days: tuple[int, ...] = (30, 90)
    follow_up_answer_days: int = 7
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
    sms_reply_limit: int = 5
    simulator_phone_prefixes: str = "+2237000"
    erase_pin_minutes: int = 15
    password_reset_minutes: int = 30
    sms_reply_window_seconds: int = 3600
    retention_transcript_days: int = 30
    retention_sms_days: int = 90
    retention_referral_days: int = 365
    retention_withdrawn_days: int = 30
    retention_purge_seconds: int = 3600
    login_free_failures: int = 3
    login_max_delay_seconds: int = 900
    password_checks: int = 2
    password_check_wait_seconds: float = 2.0
    # Tests only: a USSD step that fails unexpectedly raises instead of ending politely, so that a
    # crash inside a step fails the test that caused it (refused in production).
    raise_step_errors: bool = False
    # The operators' USSD gateways the SMPP connector binds to (see SmppLink); the local emulator.
    smpp_connections: str = "smpp://sira:sira@127.0.0.1:2775?name=emulator&network=61002"
    smpp_workers: int = 16  # conversation steps the connector runs at once
    smpp_emulator_url: str = "http://127.0.0.1:8026"  # the SMPP gateway emulator's phones (simulator)
    metrics_allowed_networks: str = "127.0.0.1/32,::1/128"  # who may scrape /metrics
    # Where this machine's processes share their counters (prometheus_client reads it itself, at
    # import, so it is set in the environment of every process; here it is only checked).
    prometheus_multiproc_dir: str = ""
    log_format: str = "text"  # or json: one object per line, with the request id carried to jobs

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @cached_property
    def rate_limit_exempt(self) -> tuple[str, ...]:
        """The numbers no rate limit holds: the demo numbers, in development only."""
        return demo_numbers() if self.env == "development" else ()

    @cached_property
    def callback_secrets(self) -> tuple[str, ...]:
        """The valid first path segments of gateway callbacks (two during a rotation)."""
        return tuple(s.strip() for s in self.callback_secret.split(",") if s.strip())

    @property
    def gateway_timeout_seconds(self) -> float:
        """How long one send through the slowest route in use (SMS_GATEWAY's alone, without
        SMS_ROUTES) may wait for answers, each route with its own settings."""
        return slowest_send_seconds(self)

    @cached_property
    def simulator_prefixes(self) -> tuple[str, ...]:
        """The reserved test numbers (E.164 prefixes) the admin's simulator may play."""
        return tuple(p.strip() for p in self.simulator_phone_prefixes.split(",") if p.strip())

    @cached_property
    def encryption_keyring(self) -> tuple[tuple[str, bytes], ...]:
        """(key id, 32-byte key) pairs, current first; the development key if none are set."""
        if not self.encryption_keys.strip():
            return (DEV_ENCRYPTION_KEY,)
        return parse_encryption_keys(self.encryption_keys)

    @cached_property
    def smpp_links(self) -> tuple[SmppLink, ...]:
        """The SMPP connector's links, parsed (validated once at start-up)."""
        return parse_smpp_links(self.smpp_connections)

    @cached_property
    def sentinel_addresses(self) -> tuple[tuple[str, int], ...]:
        """(host, port) of each Sentinel; ValueError names a malformed entry."""
        addresses = []
        for entry in (e.strip() for e in self.redis_sentinels.split(",") if e.strip()):
            host, sep, port = entry.rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"{entry!r} is not host:port")
            addresses.append((host.strip("[]"), int(port)))
        return tuple(addresses)

    @cached_property
    def routing(self) -> Routing:
        """The SMS routes and the prefix map, parsed (validated once at start-up)."""
        return parse_routing(self)

    @cached_property
    def callback_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks gateway callbacks may come from; empty: from anywhere."""
        return _networks(self.callback_allowed_networks)

    @property
    def metrics_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """The networks Prometheus may scrape /metrics from; empty: nobody."""
        return _networks(self.metrics_allowed_networks)


@cache
def demo_numbers() -> tuple[str, ...]:
    """The numbers the README's examples dial, from the sample data (seed/), read once."""
    lines = (line.strip() for line in DEMO_NUMBERS.read_text(encoding="utf-8").splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


def _networks(value: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated CIDRs -> networks; ValueError names the bad one."""
    return tuple(ipaddress.ip_network(x.strip(), strict=False) for x in value.split(",") if x.strip())


def callback_url(base_url: str, path: str, secrets: tuple[str, ...]) -> str:
    """The URL a gateway (or the terminal phone) calls `path` at: behind the current secret."""
    base = base_url.rstrip("/")
    return f"{base}/{secrets[0]}{path}" if secrets else f"{base}{path}"


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
    "orange_api_url": ("http", "https"),
    "kannel_sendsms_url": ("http", "https"),
    "public_base_url": ("http", "https"),
    "smpp_emulator_url": ("http", "https"),
}


# Settings for which an empty value is a choice, not an unset variable: AT_API_URL="" means the
# SDK's own (live) URLs, where leaving it unset means the local emulator; SMPP_EMULATOR_URL=""
# means no SMPP gateway emulator (the admin's simulator offers Africa's Talking's webhook only).
# METRICS_ALLOWED_NETWORKS="" means that nobody may scrape /metrics; FOLLOW_UP_DAYS="" means no follow-up.
EMPTY_MEANS_SOMETHING = frozenset(
    {"at_api_url", "smpp_emulator_url", "metrics_allowed_networks", "follow_up_days"}
)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from `environ` (default: the process environment) and explicit overrides."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for f in fields(Settings):
        raw = overrides.get(f.name, environ.get(f.name.upper()))
        if raw is None or (raw == "" and f.name not in EMPTY_MEANS_SOMETHING):
            continue
        values[f.name] = coerce(f.name, f.type, raw)
    url = str(values.get("database_url", ""))
    if url.startswith("postgresql://"):
        values["database_url"] = "postgresql+psycopg://" + url[len("postgresql://") :]
    settings = Settings(**values)
    _validate(settings)
    return settings


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
    if not s.sms_retry_intervals:
        raise ConfigError("SMS_RETRY_INTERVALS must be comma-separated seconds, e.g. 5,30,120,600")
    try:
        s.routing  # noqa: B018 (parsed here so that a typo fails at start-up)
    except ValueError as exc:
        raise ConfigError(f"SMS_ROUTES / SMS_ROUTE_PREFIXES: {exc}") from None
    for route in s.routing.routes:  # a route's own URLs and time-outs, as strictly as the globals
        own = replace(s, **dict(route.options))
        for name, value in route.options:
            empty_ok = value == "" and name in EMPTY_MEANS_SOMETHING
            if (
                name in _URL_SCHEMES
                and not empty_ok
                and urlsplit(str(value)).scheme not in _URL_SCHEMES[name]
            ):
                raise ConfigError(
                    f"SMS_ROUTES route {route.name}: {name} must start with http:// or https://"
                )
            if name.endswith("_timeout_seconds") and getattr(own, name) <= 0:
                raise ConfigError(f"SMS_ROUTES route {route.name}: {name} must be positive")
    if s.sms_route_failures < 1 or s.sms_route_cooldown_seconds < 1:
        raise ConfigError("SMS_ROUTE_FAILURES and SMS_ROUTE_COOLDOWN_SECONDS must be at least 1")
    if min(s.at_timeout_seconds, s.kannel_timeout_seconds, s.orange_timeout_seconds) <= 0:
        raise ConfigError(
            "AT_TIMEOUT_SECONDS, KANNEL_TIMEOUT_SECONDS and ORANGE_TIMEOUT_SECONDS must be positive"
        )
    if not s.gateway_timeout_seconds < s.sms_job_timeout_seconds < s.sms_claim_lease_seconds:
        raise ConfigError(
            "AT_TIMEOUT_SECONDS (KANNEL_TIMEOUT_SECONDS with SMS_GATEWAY=kannel, 4 x ORANGE_TIMEOUT_SECONDS"
            " with SMS_GATEWAY=orange; the slowest route's with SMS_ROUTES) < SMS_JOB_TIMEOUT_SECONDS"
            " < SMS_CLAIM_LEASE_SECONDS must hold: a send is cut off by its job time-out before the"
            " sweeper may take it back"
        )
    if not 0 <= s.kannel_dlr_mask <= 31:
        raise ConfigError(
            "KANNEL_DLR_MASK must be between 0 and 31 (sum of Kannel's DLR types 1, 2, 4, 8, 16)"
        )
    orange = [replace(s, **dict(r.options)) for r in s.routing.routes if r.kind == "orange"]
    if any(not own.orange_sender_address.strip() for own in orange):
        raise ConfigError(
            "ORANGE_SENDER_ADDRESS must be set when SMS go through Orange (SMS_GATEWAY=orange or an orange"
            " route in SMS_ROUTES): our Orange number in E.164, tel:+223 and 8 digits"
        )
    for own in (s, *orange):
        if own.orange_sender_address.strip() and not re.fullmatch(
            r"(tel:)?\+[1-9]\d{6,14}", own.orange_sender_address.strip()
        ):
            raise ConfigError("ORANGE_SENDER_ADDRESS must be our number in E.164, tel:+223 and 8 digits")
    if s.sms_max_attempts < 1 or s.database_connect_timeout_seconds < 1:
        raise ConfigError("SMS_MAX_ATTEMPTS and DATABASE_CONNECT_TIMEOUT_SECONDS must be at least 1")
    for name in ("outbox_sweep_seconds", "worker_maintenance_seconds", "spool_replay_seconds"):
        if getattr(s, name) < 1:
            raise ConfigError(f"{name.upper()} must be at least 1")
    if s.ussd_remembered_states < 0:
        raise ConfigError("USSD_REMEMBERED_STATES must be 0 or more")
    if s.ussd_session_ttl_seconds < 30 or s.resume_window_hours < 0:
        raise ConfigError("USSD_SESSION_TTL_SECONDS must be >= 30 and RESUME_WINDOW_HOURS >= 0")
    keyring = s.encryption_keyring  # a malformed ENCRYPTION_KEYS fails here, in any environment
    try:
        s.callback_networks  # noqa: B018 (parsed here so that a typo fails at start-up)
    except ValueError as exc:
        raise ConfigError(f"CALLBACK_ALLOWED_NETWORKS must be comma-separated CIDRs ({exc})") from None
    try:
        s.metrics_networks  # noqa: B018 (parsed here so that a typo fails at start-up)
    except ValueError as exc:
        raise ConfigError(f"METRICS_ALLOWED_NETWORKS must be comma-separated CIDRs ({exc})") from None
    if s.callback_max_bytes < 512 or s.trusted_proxies < 0:
        raise ConfigError("CALLBACK_MAX_BYTES must be >= 512 and TRUSTED_PROXIES >= 0")
    limits = ("ussd_rate_limit", "ussd_rate_window_seconds", "sms_rate_limit", "sms_rate_window_seconds")
    if any(getattr(s, name) < 0 for name in limits) or not (
        s.ussd_rate_window_seconds and s.sms_rate_window_seconds
    ):
        raise ConfigError("rate limits must be >= 0 (0: no limit) and their windows > 0 seconds")
    if not s.simulator_prefixes or not all(re.fullmatch(r"\+\d{4,14}", p) for p in s.simulator_prefixes):
        raise ConfigError("SIMULATOR_PHONE_PREFIXES must be comma-separated E.164 prefixes, like +2237000")
    if any(d < 1 for d in s.follow_up_days) or len(set(s.follow_up_days)) != len(s.follow_up_days):
        raise ConfigError(
            "FOLLOW_UP_DAYS must be distinct days >= 1, comma-separated, e.g. 30,90 (empty: none)"
        )
    if s.follow_up_answer_days < 1:
        raise ConfigError("FOLLOW_UP_ANSWER_DAYS must be >= 1")
    if not 1 <= s.erase_pin_minutes <= 1440:
        raise ConfigError("ERASE_PIN_MINUTES must be between 1 and 1440")
    if not 1 <= s.password_reset_minutes <= 1440:
        raise ConfigError("PASSWORD_RESET_MINUTES must be between 1 and 1440")
    if s.sms_reply_limit < 1 or s.sms_reply_window_seconds < 1:
        raise ConfigError(
            "SMS_REPLY_LIMIT and SMS_REPLY_WINDOW_SECONDS must be >= 1 (a finite limit for everyone)"
        )
    if s.login_free_failures < 1 or s.login_max_delay_seconds < 1 or s.password_checks < 1:
        raise ConfigError("LOGIN_FREE_FAILURES, LOGIN_MAX_DELAY_SECONDS and PASSWORD_CHECKS must be >= 1")
    retention = ("retention_transcript_days", "retention_sms_days", "retention_referral_days",
                 "retention_withdrawn_days")  # fmt: skip
    if any(getattr(s, name) < 1 for name in retention) or s.retention_purge_seconds < 60:
        raise ConfigError("RETENTION_*_DAYS must be >= 1 and RETENTION_PURGE_SECONDS >= 60")
    try:
        s.smpp_links  # noqa: B018 (parsed here so that a typo fails at start-up)
    except ValueError as exc:
        raise ConfigError(f"SMPP_CONNECTIONS: {exc}") from None
    if s.prometheus_multiproc_dir and not os.access(s.prometheus_multiproc_dir, os.W_OK | os.X_OK):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR must be a directory this process can write to")
    try:
        s.sentinel_addresses  # noqa: B018 (parsed here so that a typo fails at start-up)
    except ValueError as exc:
        raise ConfigError(f"REDIS_SENTINELS must be comma-separated host:port ({exc})") from None
    if s.log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be text or json, got {s.log_format!r}")
    if s.smpp_workers < 1:
        raise ConfigError("SMPP_WORKERS must be at least 1")
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
