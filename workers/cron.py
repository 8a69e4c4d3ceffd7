"""The worker's periodic jobs, on RQ's cron."""

from __future__ import annotations

import logging
import os
import threading
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler

from workers import queues
from workers.deadlines import check_deadlines
from workers.outbox import sweep_outbox
from workers.retention import purge
from workers.transcripts import flush_steps

log = logging.getLogger(__name__)


def start_cron(
    redis: Redis, sweep_seconds: int, deadline_seconds: int, retention_seconds: int = 3600
) -> None:
    """RQ's cron, in a thread of the worker: the outbox sweep, the referral deadlines, the retention purge.

    A thread rather than `rq cron` so that the Procfile's one `worker` entry is enough; a Redis
    outage only skips ticks. Several workers may each queue a sweep: sweeping is idempotent.
    """
    cron = CronScheduler(connection=redis, name=f"sira-cron-{os.getpid()}")
    cron.register(sweep_outbox, queue_name=queues.DEFAULT, interval=sweep_seconds, job_timeout=120)
    cron.register(flush_steps, queue_name=queues.DEFAULT, interval=5, job_timeout=120)
    cron.register(check_deadlines, queue_name=queues.DEFAULT, interval=deadline_seconds, job_timeout=300)
    cron.register(purge, queue_name=queues.DEFAULT, interval=retention_seconds, job_timeout=600)

    def tick() -> None:
        while True:
            try:
                cron.enqueue_jobs()
            except RedisError as exc:
                log.warning("cron: redis unavailable (%s); will try again", type(exc).__name__)
            time.sleep(1)

    threading.Thread(target=tick, name="sira-cron", daemon=True).start()
