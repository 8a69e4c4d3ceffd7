"""How Sira runs its jobs: one RQ `SimpleWorker` on every queue, the same for the CLI and the tests.

No fork per job: Sira's jobs are short, bounded by time-outs, and a fork that rebuilds the
database pool, catalogs and gateway connection costs more than the job (bench/README.md). Tests
run their jobs through `run_jobs` too, so that they run them as production does.
"""

from __future__ import annotations

import logging

from redis import Redis

from config import Settings
from infra import queues
from workers.worker import Worker  # RQ's SimpleWorker, carrying each job's request id

# RQ's bookkeeping for every job, at INFO: four lines a job, and one more for each job the cron
# queues. The cron queues one every few seconds, so an idle worker printed ~120 lines a minute.
_ROUTINE = frozenset({
    "Worker %s: %s: %s (%s)",  # a job starts; and "Job OK"
    "Successfully completed %s job in %ss on worker %s",
    "Successfully completed job %s in %ss on worker %s",
    "Worker %s: job %s result is kept for %s seconds",
})  # fmt: skip


class RoutineJobLines(logging.Filter):
    """Drops RQ's per-job INFO lines. Sira's jobs log what they did themselves (an SMS sent, a sweep,
    a replay, a flush or a purge that found something), and RQ's warnings and errors pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        return not (record.msg in _ROUTINE or str(record.msg).startswith("Enqueued job "))


QUIET = RoutineJobLines()


def quiet_routine_logs() -> None:
    """An idle worker says nothing at INFO: filter RQ's worker and cron loggers (idempotent)."""
    for name in ("rq.worker", "rq.cron"):
        logging.getLogger(name).addFilter(QUIET)


def run_jobs(redis: Redis, settings: Settings, burst: bool = False, logging_level: str = "INFO") -> None:
    """Work Sira's queues (until they are empty, with `burst`), with RQ's scheduler for retries."""
    quiet_routine_logs()
    # The maintenance pass is what hands the job of a killed worker back (StartedJobRegistry).
    worker = Worker(
        list(queues.ALL), connection=redis, maintenance_interval=settings.worker_maintenance_seconds
    )
    # After a Redis outage, reconnect within seconds rather than RQ's default of up to a minute.
    worker.max_connection_wait_time = 5.0
    worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
