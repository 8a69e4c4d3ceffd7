"""What a job needs (settings, database sessions, the SMS gateway, texts), built once per process.

Sira's worker does not fork per job (see `cli.worker_command`), so the context, its database
pool and its gateway connection serve every job of the process. It is keyed by process id (a
forking worker's child builds its own rather than share its parent's connections) and by the
settings (tests run jobs against one database, then another).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import lru_cache

from prometheus_client import Counter
from rq import get_current_job
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, load_settings
from flows.i18n import Catalogs
from flows.sms import SmsTexts
from gateway import Router, SmsGateway, gateway_from_settings, router_from_settings
from infra.queues import Outbox
from infra.sealing import Keyring
from models.base import as_utc, utcnow
from models.db import autocommit_sessions, make_session_factory

log = logging.getLogger(__name__)

_contexts: dict[tuple[int, Settings], JobContext] = {}


@dataclass
class JobContext:
    settings: Settings
    sessions: sessionmaker[Session]
    statements: sessionmaker[Session]  # the same pool, each statement committed by itself
    gateway: SmsGateway  # SMS_GATEWAY's: the one whose bundle the admin reads
    router: Router  # what sends: the routes of SMS_ROUTES, or SMS_GATEWAY's alone
    texts: SmsTexts


def job_context() -> JobContext:
    """This process's context for the current settings, built on first use."""
    settings = _settings()
    key = (os.getpid(), settings)
    if key not in _contexts:
        for old in _contexts.values():
            old.sessions.kw["bind"].dispose(close=False)
        _contexts.clear()
        sessions = make_session_factory(
            settings.database_url,
            Keyring(settings.encryption_keyring),
            settings.database_connect_timeout_seconds,
        )
        _contexts[key] = JobContext(
            settings=settings,
            sessions=sessions,
            statements=autocommit_sessions(sessions),
            gateway=gateway_from_settings(settings),
            router=router_from_settings(settings),
            texts=SmsTexts.from_settings(settings, _catalogs()),
        )
    return _contexts[key]


# The environment variables settings are read from, one per field of Settings.
_VARIABLES = frozenset(f.name.upper() for f in fields(Settings))


def _settings() -> Settings:
    """`load_settings()` of the environment as it is now, parsed again only when it changed.

    Parsing and validating every setting took about half a millisecond of CPU per job, some 5 % of
    an SMS send's (bench/README.md, sms_delivery); picking the variables out of the environment
    takes a small fraction of that, and a test that changes one gets settings that say so.
    """
    return _parsed(tuple((name, value) for name, value in os.environ.items() if name in _VARIABLES))


@lru_cache(maxsize=8)
def _parsed(variables: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings(dict(variables))


@lru_cache(maxsize=1)
def _catalogs() -> Catalogs:
    return Catalogs.load()


def cron_clock(now: datetime | str | None) -> datetime:
    """The moment a cron job acts at: `now` (ISO 8601, or a datetime) from a test or an operator,
    else the clock's."""
    if not now:
        return utcnow()
    return as_utc(datetime.fromisoformat(now) if isinstance(now, str) else now)


def cron_report(
    ctx: JobContext, name: str, counts: dict[str, int], sms_ids: Sequence[int], metric: Counter
) -> dict[str, int]:
    """The end of a cron job: queue the SMS it wrote (now committed), count what it did in
    `metric` by action, and log it when it did anything (the cron runs it every minute)."""
    job = get_current_job()
    if job is not None:
        Outbox.from_settings(job.connection, ctx.settings).queue(list(sms_ids))
    for action, n in counts.items():
        metric.labels(action).inc(n)
    if any(counts.values()):
        log.info("%s: %s", name, counts)
    return counts
