"""Follow-ups of outcomes, run by the worker's cron as the deadlines are.

`now` may be given (ISO 8601) so that a test or an operator can run it against a controlled
clock. Each question goes once, even with several workers: its row is claimed before its SMS
is written (see services/follow_ups.py).
"""

from __future__ import annotations

import logging
from datetime import datetime

from rq import get_current_job

from infra.metrics import FOLLOW_UP_ACTIONS
from infra.queues import Outbox
from models.base import as_utc, utcnow
from services import follow_ups
from workers.context import job_context

log = logging.getLogger(__name__)


def check_follow_ups(now: str | None = None) -> dict[str, int]:
    """RQ job: close the follow-ups left without answer, then ask the ones that are due."""
    ctx = job_context()
    moment = as_utc(datetime.fromisoformat(now)) if now else utcnow()
    settings = ctx.settings
    with ctx.sessions() as session:
        done = follow_ups.run(
            session, moment, settings.follow_up_days, settings.follow_up_answer_days, ctx.texts
        )
    job = get_current_job()
    if job is not None:
        Outbox.from_settings(job.connection, settings).queue(done.sms_ids)
    counts = {"asked": done.asked, "no_answer": done.no_answer}
    for action, n in counts.items():
        FOLLOW_UP_ACTIONS.labels(action).inc(n)
    if any(counts.values()):  # said only when it did something: the cron runs it every minute
        log.info("follow-ups: %s", counts)
    return counts
