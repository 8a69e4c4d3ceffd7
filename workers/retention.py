"""Retention: personal data is kept only as long as the service needs it, then purged.

Run by the worker's cron; `now` may be given (ISO 8601) so that a test or an operator can run
it against a controlled clock. Each rule only touches rows it has not purged (`purged_at`) or
erased (no hash left) yet, so a second
run, or two workers running it at once, change nothing more:

- USSD transcript steps (what people typed, the screens they saw) are deleted after
  RETENTION_TRANSCRIPT_DAYS; the session rows stay, with their hashed phone and outcome;
- SMS texts, both ways, are blanked after RETENTION_SMS_DAYS, and so are their numbers in
  clear (the keyed hash stays); messages still to be sent are left alone;
- finished referrals (closed, cancelled, expired with a provider) are cut from their returnee
  after RETENTION_REFERRAL_DAYS, as erasure does, and stay for the CNRM's figures;
- callbacks the spool set aside (`SPOOL_DIR/rejected/`, sealed) are deleted after
  RETENTION_SMS_DAYS, like the SMS they carried;
- USSD steps the transcript flush set aside in Redis (could not be written) are deleted after
  RETENTION_TRANSCRIPT_DAYS, like the written ones;
- a returnee whose consent was withdrawn RETENTION_WITHDRAWN_DAYS ago, and not given again, is
  erased as on their own request (see SECURITY.md for why withdrawal is not an erasure at once);
- erasure records (the phone's keyed hash and time) go once no session open at the erasure can
  still be running: after the Redis tombstone's life.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from rq import get_current_job
from sqlalchemy import delete, func, not_, select, update
from sqlalchemy.orm import Session

from config import Settings
from infra.forgetting import ERASED_TTL_SECONDS
from infra.spool import Spool
from models.messaging import InboundSms, OutboundSms, SmsStatus
from models.referral import Referral, Status, open_clause
from models.returnee import ConsentRecord, Erasure, Returnee
from models.ussd import UssdStep
from services.erasure import anonymise_referrals, erase_returnee
from workers.context import cron_clock, job_context
from workers.transcripts import purge_dead

log = logging.getLogger(__name__)

PURGED = "[purged]"
FINISHED = (Status.CLOSED, Status.CANCELLED, Status.EXPIRED)


def purge(now: datetime | str | None = None) -> dict[str, int]:
    """RQ job: apply every retention period at `now` (default: the current time)."""
    ctx, redis = job_context(), get_current_job().connection
    moment = cron_clock(now)
    with ctx.sessions() as session:
        counts = purge_at(session, ctx.settings, moment)
    spool = Spool(ctx.settings.spool_dir, ctx.settings.secret_key)
    counts["rejected_callbacks"] = spool.purge_rejected(
        moment - timedelta(days=ctx.settings.retention_sms_days)
    )
    counts["set_aside_steps"] = purge_dead(
        redis, ctx.settings.secret_key, moment - timedelta(days=ctx.settings.retention_transcript_days)
    )
    if any(counts.values()):
        log.info("retention purge: %s", counts)
    return counts


def purge_at(session: Session, settings: Settings, now: datetime) -> dict[str, int]:
    """Purge what is older than its period at `now`, in one transaction; returns what it changed."""
    steps_before = now - timedelta(days=settings.retention_transcript_days)
    sms_before = now - timedelta(days=settings.retention_sms_days)
    referrals_before = now - timedelta(days=settings.retention_referral_days)
    counts = {
        "ussd_steps": session.execute(delete(UssdStep).where(UssdStep.at < steps_before)).rowcount,
        "inbound_sms": session.execute(
            update(InboundSms)
            .where(
                InboundSms.received_at < sms_before,
                InboundSms.purged_at.is_(None),
                InboundSms.from_hash != "",
            )
            .values(text=PURGED, from_e164="", purged_at=now)
        ).rowcount,
        "outbound_sms": session.execute(
            update(OutboundSms)
            .where(
                OutboundSms.created_at < sms_before,
                OutboundSms.purged_at.is_(None),
                OutboundSms.to_hash != "",  # erased already
                not_(SmsStatus.still_to_send_clause()),
            )
            .values(body=PURGED, to_e164="", purged_at=now)
        ).rowcount,
    }
    finished = session.scalars(
        select(Referral.id).where(
            Referral.status.in_([s.value for s in FINISHED]),
            not_(open_clause()),
            Referral.updated_at < referrals_before,
            Referral.returnee_id.is_not(None),
        )
    ).all()
    anonymise_referrals(session, list(finished))
    counts["referrals"] = len(finished)
    counts["erasure_records"] = session.execute(
        delete(Erasure).where(Erasure.erased_at < now - timedelta(seconds=ERASED_TTL_SECONDS))
    ).rowcount
    counts["withdrawn_returnees"] = erase_withdrawn(
        session, now - timedelta(days=settings.retention_withdrawn_days)
    )
    session.commit()
    return counts


def erase_withdrawn(session: Session, before: datetime) -> int:
    """Erase the returnees whose last consent record is a withdrawal made before `before`."""
    last = (
        select(ConsentRecord.returnee_id, func.max(ConsentRecord.at).label("at"))
        .group_by(ConsentRecord.returnee_id)
        .subquery()
    )
    withdrawn = session.scalars(
        select(Returnee)
        .join(last, last.c.returnee_id == Returnee.id)
        .where(Returnee.consent_version.is_(None), last.c.at < before)
    ).all()
    for returnee in withdrawn:
        erase_returnee(session, returnee, actor="retention", channel="system")
    return len(withdrawn)
