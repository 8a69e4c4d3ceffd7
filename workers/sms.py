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

from redis import Redis
from rq import get_current_job
from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway import Outcome, OutgoingSms, Routed, scoped_id
from infra.metrics import SMS_SEND_SECONDS, SMS_SENDS
from models.base import utcnow
from models.db import unflushed_commit
from models.messaging import OutboundSms, SmsStatus
from services.erasure import forget_confirmation
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


def claim(session: Session, sms_id: int) -> OutboundSms | None:
    """Mark the row as being sent by this job, under a fresh reference (see OutgoingSms.reference),
    and return it as claimed (one statement: the UPDATE returns the row); None if it is not ours to send."""
    now = utcnow()
    row = session.scalars(
        update(OutboundSms)
        # Not flushed to disk before the send: if the database crashed and lost the claim, the row
        # would be `pending` again and sent once more, the one duplicate a crash allows anyway (as a
        # durable claim would be sent again once its lease ran out). The record after the send is
        # durable, and its flush carries the claim with it.
        .where(OutboundSms.id == sms_id, SmsStatus.to_send_clause(), *unflushed_commit(session))
        .values(
            status=SmsStatus.SENDING,
            claimed_at=now,
            attempts=OutboundSms.attempts + 1,
            gateway_id=f"sira-{uuid.uuid4().hex}",
        )
        .returning(OutboundSms)
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
        route = routed.route.name if routed.route else "none"
        SMS_SEND_SECONDS.labels(route).observe(time.perf_counter() - started)  # what sizes the worker pool
        record(row, routed, ctx.settings.sms_retry_intervals, ctx.settings.sms_max_attempts)
        SMS_SENDS.labels(route, str(result.outcome)).inc()
        if result.outcome is Outcome.ACCEPTED:
            forget_confirmation(row)
        session.commit()
        log.info(
            "sms %s: %s by %s (%s)",
            sms_id,
            result.outcome,
            row.route or "-",
            result.gateway_id or result.status,
        )
        if row.status == SmsStatus.DEAD:
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


def record(row: OutboundSms, routed: Routed, intervals: Sequence[int], max_attempts: int) -> None:
    """Write what the gateway said on the row; after `max_attempts` failed tries it is dead.

    An accepted message keeps the route that took it and the gateway's id scoped by its kind, the
    key its delivery reports find it by; a failure names the route that gave it.
    """
    now = utcnow()
    result = routed.result
    row.gateway_status = result.status[:40] if result.status else None
    row.claimed_at = None
    if result.outcome is Outcome.ACCEPTED:
        row.status = SmsStatus.ACCEPTED
        row.route = routed.route.name if routed.route else None
        row.gateway_id = (
            scoped_id(routed.route.kind, result.gateway_id)
            if routed.route and result.gateway_id
            else result.gateway_id
        )
        row.cost = result.cost
        row.accepted_at = now
        row.segments = result.segments or row.segments
        row.last_error = None
        return
    row.gateway_id = None  # the claim's reference: no message of that id left us
    if result.outcome is Outcome.PERMANENT:
        row.status = SmsStatus.FAILED
        row.last_error = _error(routed)
    else:
        row.last_error = _error(routed)
        if row.attempts >= max_attempts:
            row.status = SmsStatus.DEAD
            return
        row.status = SmsStatus.HELD if result.outcome is Outcome.HELD else SmsStatus.PENDING
        wait = backoff(row.attempts, intervals)
        if result.retry_after is not None:
            wait = max(wait, timedelta(seconds=result.retry_after))
        row.next_attempt_at = now + wait


def _error(routed: Routed) -> str:
    reason = routed.result.detail or routed.result.status
    if len(routed.tried) > 1:
        reason = f"{'/'.join(routed.tried)}: {reason}"  # every route failed; the reason is the worst one's
    return reason[:200]
