"""Move buffered USSD steps from Redis into the database, in batches (see services/transcripts)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from functools import partial

from redis import Redis
from rq import get_current_job
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from infra.forgetting import erasure_times
from infra.keys import STEP_BUFFER, STEP_DEAD, STEP_FLUSH_LOCK
from infra.sealing import Sealer
from models.base import as_utc
from services.transcripts import SEALING_PURPOSE, Erasures, write_steps
from workers.context import job_context

log = logging.getLogger(__name__)

BATCH = 1000


def flush_steps(redis: Redis | None = None) -> int:
    """RQ job (the worker's cron): copy the buffer's head to the database, then trim it.

    Records are removed only after the commit, and one flusher runs at a time (a lock), so a
    crash leaves them to the next run; the inserts are idempotent.
    """
    ctx = job_context()
    redis = redis or get_current_job().connection
    if not redis.set(STEP_FLUSH_LOCK, "1", nx=True, ex=300):
        return 0
    try:
        blobs = redis.lrange(STEP_BUFFER, 0, BATCH - 1)
        if not blobs:
            return 0
        sealer = Sealer(ctx.settings.secret_key, SEALING_PURPOSE)
        opened = [sealer.open(blob) for blob in blobs]
        records = [json.loads(data) for data in opened if data]
        if len(records) < len(blobs):
            log.warning(
                "%d buffered USSD steps could not be opened (SECRET_KEY changed?)", len(blobs) - len(records)
            )
        erased = partial(erasure_times, redis)
        with ctx.sessions() as session:
            try:
                written = write_steps(session, records, erased)
                session.commit()
            except SQLAlchemyError:
                session.rollback()
                written = _one_by_one(session, records, redis, erased)
        redis.ltrim(STEP_BUFFER, len(blobs), -1)
        log.info("transcripts: %d USSD steps written", written)
        return written
    finally:
        redis.delete(STEP_FLUSH_LOCK)


def _one_by_one(session: Session, records: list[dict], redis: Redis, erased: Erasures) -> int:
    """The batch failed: write what can be written; set aside (still sealed) what cannot."""
    written = 0
    sealer = Sealer(job_context().settings.secret_key, SEALING_PURPOSE)
    for record in records:
        try:
            written += write_steps(session, [record], erased)
            session.commit()
        except SQLAlchemyError:
            session.rollback()
            log.warning("a buffered USSD step could not be written; kept aside in %s", STEP_DEAD)
            redis.rpush(STEP_DEAD, sealer.seal(json.dumps(record).encode()))
    return written


def purge_dead(redis: Redis, secret: str, before: datetime) -> int:
    """Retention: steps set aside in STEP_DEAD go after the transcripts' period, like written ones.

    One that can no longer be opened (its key is gone) can never be written: it goes too.
    Each is removed by value, so two purges at once remove (and count) it once.
    """
    sealer = Sealer(secret, SEALING_PURPOSE)
    removed = 0
    for blob in redis.lrange(STEP_DEAD, 0, -1):
        data = sealer.open(blob)
        try:
            at = as_utc(datetime.fromisoformat(json.loads(data)["at"])) if data else None
        except (ValueError, KeyError, TypeError):
            at = None
        if at is None or at < before:
            removed += redis.lrem(STEP_DEAD, 1, blob)
    return removed
