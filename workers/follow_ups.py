"""Follow-ups of outcomes, run by the worker's cron as the deadlines are.

`now` may be given (ISO 8601) so that a test or an operator can run it against a controlled
clock. Each question goes once, even with several workers: its row is claimed before its SMS
is written (see services/follow_ups.py).
"""

from __future__ import annotations

from infra.metrics import FOLLOW_UP_ACTIONS
from services import follow_ups
from workers.context import cron_clock, cron_report, job_context


def check_follow_ups(now: str | None = None) -> dict[str, int]:
    """RQ job: close the follow-ups left without answer, then ask the ones that are due."""
    ctx = job_context()
    settings = ctx.settings
    with ctx.sessions() as session:
        done = follow_ups.run(
            session, cron_clock(now), settings.follow_up_days, settings.follow_up_answer_days, ctx.texts
        )
    return cron_report(ctx, "follow-ups", {"asked": done.asked, "no_answer": done.no_answer}, done.sms_ids,
                       FOLLOW_UP_ACTIONS)  # fmt: skip
