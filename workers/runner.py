"""How Sira runs its jobs: one RQ `SimpleWorker` on every queue, the same for the CLI and the tests.

No fork per job: Sira's jobs are short, bounded by time-outs, and a fork that rebuilds the
database pool, catalogs and gateway connection costs more than the job (bench/README.md). Tests
run their jobs through `run_jobs` too, so that they run them as production does.

An outage never ends the process: RQ's work loop quits on any Redis error outside its wait for
a job (a job's bookkeeping, a heartbeat, the maintenance pass), and under honcho one process
that exits stops them all. `run_jobs` waits until Redis answers and starts the loop again; only
a stop that was asked for (SIGTERM, SIGINT) ends it. RQ's scheduler runs in a forked child,
which is told to die with its parent, so that a worker killed outright leaves no orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time

from redis import Redis
from redis.exceptions import RedisError
from rq.scheduler import RQScheduler

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
log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when the thread that forked it dies
RESTART_WAIT_MAX = 5.0  # seconds between two checks of Redis while it is away, at most


class _OrphanlessScheduler(RQScheduler):
    """RQ's scheduler, in a child that ends with the worker however the worker ended."""

    def work(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux only; elsewhere, as RQ does
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() == 1:  # the worker died before the line above: nobody to schedule for
            return
        super().work()


class _Worker(Worker):
    """Sira's worker (each job's request id in its logs) whose scheduler child does not outlive it."""

    def _start_scheduler(
        self, burst: bool = False, logging_level: str | None = "INFO", *args, **kwargs
    ) -> None:
        self.scheduler = _OrphanlessScheduler(
            self.queues, connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            serializer=self.serializer,
        )  # fmt: skip
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()


def quiet_routine_logs() -> None:
    """An idle worker says nothing at INFO: filter RQ's worker and cron loggers (idempotent)."""
    for name in ("rq.worker", "rq.cron"):
        logging.getLogger(name).addFilter(QUIET)


def run_jobs(redis: Redis, settings: Settings, burst: bool = False, logging_level: str = "INFO") -> None:
    """Work Sira's queues (until they are empty, with `burst`), with RQ's scheduler for retries.

    Redis lost: wait until it answers and work on, however often; return only when asked to stop.
    """
    quiet_routine_logs()
    while True:
        # The maintenance pass is what hands the job of a killed worker back (StartedJobRegistry).
        worker = _Worker(
            list(queues.ALL), connection=redis, maintenance_interval=settings.worker_maintenance_seconds
        )
        # After a Redis outage, reconnect within seconds rather than RQ's default of up to a minute.
        worker.max_connection_wait_time = RESTART_WAIT_MAX
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level=logging_level)
        except RedisError as exc:  # raised by RQ's start or its clean-up while Redis is away
            log.warning("the worker lost Redis (%s)", type(exc).__name__)
        if burst or worker._shutdown_requested_date is not None:
            return
        log.warning("the worker's loop ended on an outage: it starts again once Redis answers")
        wait_for_redis(redis)


def wait_for_redis(redis: Redis) -> None:
    """Block until Redis answers a PING, checking more and more seldom (up to every few seconds).

    A stop asked meanwhile ends the process as usual (RQ's handlers are gone with its loop).
    """
    for name in (signal.SIGTERM, signal.SIGINT):
        signal.signal(name, signal.SIG_DFL)
    wait = 0.2
    while True:
        try:
            if redis.ping():
                return
        except RedisError:
            pass
        time.sleep(wait)
        wait = min(wait * 2, RESTART_WAIT_MAX)
