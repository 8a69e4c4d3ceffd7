"""How Sira runs its jobs: one RQ `SimpleWorker` on every queue, the same for the CLI and the tests.

No fork per job: Sira's jobs are short, bounded by time-outs, and a fork that rebuilds the
database pool, catalogs and gateway connection costs more than the job (bench/README.md). Tests
run their jobs through `run_jobs` too, so that they run them as production does.
"""

from __future__ import annotations

from redis import Redis
from rq import SimpleWorker

from config import Settings
from workers import queues


def run_jobs(redis: Redis, settings: Settings, burst: bool = False, logging_level: str = "INFO") -> None:
    """Work Sira's queues (until they are empty, with `burst`), with RQ's scheduler for retries."""
    # The maintenance pass is what hands the job of a killed worker back (StartedJobRegistry).
    worker = SimpleWorker(
        list(queues.ALL), connection=redis, maintenance_interval=settings.worker_maintenance_seconds
    )
    # After a Redis outage, reconnect within seconds rather than RQ's default of up to a minute.
    worker.max_connection_wait_time = 5.0
    worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
