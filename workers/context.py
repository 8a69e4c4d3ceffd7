"""What a job needs (settings, database sessions, the SMS gateway, texts), built once per process.

RQ forks a work-horse per job; a connection pool inherited across a fork is shared with the
parent, so the context is keyed by process id and a child builds its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from config import Settings, load_settings
from flows.i18n import Catalogs
from flows.sms import SmsTexts
from gateway import SmsGateway, gateway_from_settings
from models.db import make_session_factory

_contexts: dict[int, JobContext] = {}


@dataclass
class JobContext:
    settings: Settings
    sessions: sessionmaker[Session]
    gateway: SmsGateway
    texts: SmsTexts


def sms_texts(settings: Settings, catalogs: Catalogs) -> SmsTexts:
    """The one way to build SMS texts from settings, for the web layer and the workers alike."""
    return SmsTexts(
        catalogs=catalogs,
        provider_sender=settings.sms_sender_provider,
        returnee_sender=settings.sms_sender_returnee,
        ussd_code=settings.ussd_service_code,
    )


def job_context() -> JobContext:
    """This process's context, built from the environment on first use."""
    pid = os.getpid()
    if pid not in _contexts:
        _contexts.clear()
        settings = load_settings()
        _contexts[pid] = JobContext(
            settings=settings,
            sessions=make_session_factory(settings.database_url),
            gateway=gateway_from_settings(settings),
            texts=sms_texts(settings, Catalogs.load()),
        )
    return _contexts[pid]
