"""Replaying the callbacks spooled while the database was down (see infra/spool.py)."""

from __future__ import annotations

import logging

from rq import get_current_job

from infra import spool
from infra.forgetting import forget_phone, forget_profiles
from infra.queues import Outbox
from services.inbound import ReplyLimit, delivery_report, opt_out, receive
from workers.context import job_context

log = logging.getLogger(__name__)


def replay_spool() -> dict[str, int]:
    """RQ job (run by the worker's cron): apply each spooled callback, exactly as the webhook would."""
    ctx = job_context()
    settings = ctx.settings
    redis = get_current_job().connection

    def apply(kind: str, fields: dict[str, str]) -> None:
        with ctx.sessions() as session:
            if kind in (spool.DELIVERY, spool.OPTOUT):
                if kind == spool.DELIVERY:
                    delivery_report(session, fields)
                else:
                    opt_out(session, fields, settings.phone_hash_key)
                session.commit()
                return
            received = receive(session, fields, ctx.texts, settings.phone_hash_key,
                               ReplyLimit.from_settings(settings), act=fields.get("limited") != "1")  # fmt: skip
            session.commit()
        if received.outcome is None:
            return
        Outbox.from_settings(redis, settings).queue(received.sms_ids)
        forget_profiles(redis, *received.touched)
        if received.erased:
            forget_phone(redis, received.erased)

    replayed = spool.Spool(settings.spool_dir, settings.secret_key).replay(apply)
    counts = {"replayed": replayed.done, "left": replayed.left, "rejected": replayed.rejected}
    if any(counts.values()):
        log.info("spool replay: %s", counts)
    return counts
