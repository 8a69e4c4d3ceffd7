"""The worker's periodic jobs, on RQ's cron."""

from __future__ import annotations

import logging
import os
import threading
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.cron import CronScheduler

from config import Settings
from infra import keys, queues
from workers.deadlines import check_deadlines
from workers.follow_ups import check_follow_ups
from workers.outbox import sweep_outbox
from workers.retention import purge
from workers.routes import check_routes
from workers.spool import replay_spool
from workers.transcripts import flush_steps

log = logging.getLogger(__name__)


def start_cron(redis: Redis, settings: Settings) -> None:
    """RQ's cron, in a thread of the worker: outbox sweep, referral deadlines, follow-ups of outcomes,
    spool, retention purge, the SMS routes' health check.

    A thread rather than `rq cron` so that the Procfile's one `worker` entry is enough; a Redis
    outage only skips ticks. Several workers may each queue a sweep: sweeping is idempotent.
    """
    cron = CronScheduler(connection=redis, name=keys.cron_name(os.getpid()))
    every = {
        sweep_outbox: settings.outbox_sweep_seconds,
        flush_steps: 5,
        check_deadlines: settings.deadline_check_seconds,
        check_follow_ups: settings.deadline_check_seconds,
        replay_spool: settings.spool_replay_seconds,
        purge: settings.retention_purge_seconds,
        check_routes: settings.sms_route_cooldown_seconds,
    }
    for job, interval in every.items():
        cron.register(job, queue_name=queues.DEFAULT, interval=interval, job_timeout=300)

    def tick() -> None:
        while True:
            try:
                cron.enqueue_jobs()
            except RedisError as exc:
                log.warning("cron: redis unavailable (%s); will try again", type(exc).__name__)
            time.sleep(1)

    threading.Thread(target=tick, name="sira-cron", daemon=True).start()
