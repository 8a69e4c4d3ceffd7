"""Send one outbox message through the gateway, exactly once as far as we can know.

The row is claimed in the database before the gateway is called, so a second job for the same
message does nothing; an accepted message is never sent again. The only duplicate left is a
crash between the gateway's acceptance and our commit: the sweeper then reclaims the row.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import get_current_job
from sqlalchemy import Row, update
from sqlalchemy.orm import Session

from gateway import Outcome, OutgoingSms, Routed, scoped_id
from infra.metrics import SMS_SEND_SECONDS, SMS_SENDS
from models.base import utcnow
from models.db import unflushed_commit
from models.messaging import OutboundSms, SmsStatus
from services.erasure import forgotten_confirmation
from workers.context import job_context

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 3600


class GatewayRetry(RuntimeError):
    """The gateway could not take the message now; RQ retries with backoff."""


def backoff(attempts: int, seconds: Sequence[int]) -> timedelta:
    """When the sweeper may try again: SMS_RETRY_INTERVALS, then doubling up to an hour."""
    if attempts <= len(seconds):
        return timedelta(seconds=seconds[max(attempts, 1) - 1])
    return timedelta(seconds=min(seconds[-1] * 2 ** (attempts - len(seconds)), MAX_BACKOFF_SECONDS))


# The send job reads and writes its row with plain Core statements on the table: the ORM's identity
# map and unit of work cost more CPU than both statements' own work (bench/README.md).
OUTBOX = OutboundSms.__table__
CLAIMED = tuple(OUTBOX.c[name] for name in (
    "id", "to_e164", "body", "sender", "purpose", "attempts", "segments", "gateway_id"
))  # fmt: skip


def claim(session: Session, sms_id: int) -> Row | None:
    """Mark the row as being sent by this job, under a fresh reference (see OutgoingSms.reference),
    and return it as claimed (one statement: the UPDATE returns the row); None if it is not ours to send."""
    now = utcnow()
    row = session.execute(
        update(OUTBOX)
        # Not flushed to disk before the send: if the database crashed and lost the claim, the row
        # would be `pending` again and sent once more, the one duplicate a crash allows anyway (as a
        # durable claim would be sent again once its lease ran out). The record after the send is
        # durable, and its flush carries the claim with it.
        .where(OUTBOX.c.id == sms_id, SmsStatus.to_send_clause(), *unflushed_commit(session))
        .values(
            status=SmsStatus.SENDING,
            claimed_at=now,
            attempts=OUTBOX.c.attempts + 1,
            gateway_id=f"sira-{uuid.uuid4().hex}",
        )
        .returning(*CLAIMED)
    ).one_or_none()
    session.commit()
    return row


def send_sms(sms_id: int) -> str:
    """RQ job: send outbox row `sms_id`; raises GatewayRetry for RQ to try again later."""
    ctx = job_context()
    # Two statements, each committed by itself: the claim (before the gateway is called, so a second
    # job finds the row taken) and the record of the answer. A transaction around each would add a
    # BEGIN and a COMMIT, and a SELECT read the row after the claim: five round trips fewer a send.
    with ctx.statements() as session:
        row = claim(session, sms_id)
        if row is None:
            return "not pending"
        sms = OutgoingSms(to=row.to_e164, text=row.body, sender=row.sender, reference=row.gateway_id)
        started = time.perf_counter()
        routed = ctx.router.send(_redis(), sms)
        result = routed.result
        route = routed.route.name
        SMS_SEND_SECONDS.labels(route).observe(time.perf_counter() - started)  # what sizes the worker pool
        values = record(row, routed, ctx.settings.sms_retry_intervals, ctx.settings.sms_max_attempts)
        if result.outcome is Outcome.ACCEPTED:
            values.update(forgotten_confirmation(row.purpose))
        session.execute(update(OUTBOX).where(OUTBOX.c.id == row.id).values(**values))
        session.commit()
        SMS_SENDS.labels(route, str(result.outcome)).inc()
        log.info(
            "sms %s: %s by %s (%s)",
            sms_id,
            result.outcome,
            route,
            result.gateway_id or result.status,
        )
        if values["status"] == SmsStatus.DEAD:
            log.warning("sms %s: given up after %d attempts", sms_id, row.attempts)
            return "dead"
        if result.retry_after is not None and result.outcome is Outcome.RETRY:
            # The gateway said when to come back: RQ's own retry might come sooner, so the
            # sweeper sends it once next_attempt_at (which honours Retry-After) is due.
            return "deferred"
        if result.outcome in (Outcome.RETRY, Outcome.HELD):
            raise GatewayRetry(f"sms {sms_id}: gateway answered {result.status}; attempt {row.attempts}")
        return str(result.outcome)


def _redis() -> Redis:
    """The job's own Redis connection, where the routes' health is kept."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("send_sms runs as an RQ job")
    return job.connection


def record(claimed: Row, routed: Routed, intervals: Sequence[int], max_attempts: int) -> dict[str, Any]:
    """What the gateway said, as the values to write on the claimed row; after `max_attempts`
    failed tries it is dead.

    An accepted message keeps the route that took it and the gateway's id scoped by its kind, the
    key its delivery reports find it by; a failure names the route that gave it.
    """
    now = utcnow()
    result = routed.result
    values: dict[str, Any] = {
        "gateway_status": result.status[:40] if result.status else None,
        "claimed_at": None,
    }
    if result.outcome is Outcome.ACCEPTED:
        values.update(
            status=SmsStatus.ACCEPTED,
            route=routed.route.name,
            gateway_id=scoped_id(routed.route.kind, result.gateway_id) if result.gateway_id else None,
            cost=result.cost,
            accepted_at=now,
            segments=result.segments or claimed.segments,
            last_error=None,
        )
        return values
    values["gateway_id"] = None  # the claim's reference: no message of that id left us
    values["last_error"] = _error(routed)
    if result.outcome is Outcome.PERMANENT:
        values["status"] = SmsStatus.FAILED
    elif claimed.attempts >= max_attempts:
        values["status"] = SmsStatus.DEAD
    else:
        values["status"] = SmsStatus.HELD if result.outcome is Outcome.HELD else SmsStatus.PENDING
        wait = backoff(claimed.attempts, intervals)
        if result.retry_after is not None:
            wait = max(wait, timedelta(seconds=result.retry_after))
        values["next_attempt_at"] = now + wait
    return values


def _error(routed: Routed) -> str:
    reason = routed.result.detail or routed.result.status
    if len(routed.tried) > 1:
        reason = f"{'/'.join(routed.tried)}: {reason}"  # every route failed; the reason is the worst one's
    return reason[:200]
