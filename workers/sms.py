"""Send one outbox message through the gateway, exactly once as far as we can know.

The row is claimed in the database before the gateway is called, so a second job for the same
message does nothing; an accepted message is never sent again. The only duplicate left is a
crash between the gateway's acceptance and our commit: the sweeper then reclaims the row.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from gateway import Outcome, OutgoingSms, SendResult
from models.base import utcnow
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


def claim(session: Session, sms_id: int) -> bool:
    """Mark the row as being sent by this job, under a fresh reference (see OutgoingSms.reference);
    False if it is not ours to send."""
    now = utcnow()
    claimed = session.execute(
        update(OutboundSms)
        .where(OutboundSms.id == sms_id, SmsStatus.to_send_clause())
        .values(
            status=SmsStatus.SENDING,
            claimed_at=now,
            attempts=OutboundSms.attempts + 1,
            gateway_id=f"sira-{uuid.uuid4().hex}",
        )
    ).rowcount
    session.commit()
    return bool(claimed)


def send_sms(sms_id: int) -> str:
    """RQ job: send outbox row `sms_id`; raises GatewayRetry for RQ to try again later."""
    ctx = job_context()
    with ctx.sessions() as session:
        if not claim(session, sms_id):
            return "not pending"
        row = session.get(OutboundSms, sms_id)
        sms = OutgoingSms(to=row.to_e164, text=row.body, sender=row.sender, reference=row.gateway_id)
        result = ctx.gateway.send(sms)
        record(row, result, ctx.settings.sms_retry_intervals, ctx.settings.sms_max_attempts)
        if result.outcome is Outcome.ACCEPTED:
            forget_confirmation(row)
        session.commit()
        log.info("sms %s: %s (%s)", sms_id, result.outcome, result.gateway_id or result.status)
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


def record(row: OutboundSms, result: SendResult, intervals: Sequence[int], max_attempts: int) -> None:
    """Write what the gateway said on the row; after `max_attempts` failed tries it is dead."""
    now = utcnow()
    row.gateway_status = result.status[:40] if result.status else None
    row.claimed_at = None
    if result.outcome is Outcome.ACCEPTED:
        row.status = SmsStatus.ACCEPTED
        row.gateway_id = result.gateway_id
        row.cost = result.cost
        row.accepted_at = now
        row.segments = result.segments or row.segments
        row.last_error = None
        return
    row.gateway_id = None  # the claim's reference: no message of that id left us
    if result.outcome is Outcome.PERMANENT:
        row.status = SmsStatus.FAILED
        row.last_error = (result.detail or result.status)[:200]
    else:
        row.last_error = (result.detail or result.status)[:200]
        if row.attempts >= max_attempts:
            row.status = SmsStatus.DEAD
            return
        row.status = SmsStatus.HELD if result.outcome is Outcome.HELD else SmsStatus.PENDING
        wait = backoff(row.attempts, intervals)
        if result.retry_after is not None:
            wait = max(wait, timedelta(seconds=result.retry_after))
        row.next_attempt_at = now + wait
