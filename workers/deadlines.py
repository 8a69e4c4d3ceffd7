"""Deadlines on referrals sent to a provider, run by the worker's cron (see services/deadlines.py).

`now` may be given (ISO 8601) so that a test or an operator can run it against a controlled clock.
"""

from __future__ import annotations

from infra.metrics import DEADLINE_ACTIONS
from services import deadlines
from workers.context import cron_clock, cron_report, job_context


def check_deadlines(now: str | None = None) -> dict[str, int]:
    """RQ job: remind providers that have not answered, expire and re-route the long-silent ones."""
    ctx = job_context()
    settings = ctx.settings
    with ctx.sessions() as session:
        done = deadlines.run(session, cron_clock(now), settings.reminder_after_hours,
                             settings.expire_after_hours, ctx.texts)  # fmt: skip
    return cron_report(ctx, "deadlines", {"expired": done.expired, "reminded": done.reminded}, done.sms_ids,
                       DEADLINE_ACTIONS)  # fmt: skip
