"""The worker outlives outages: Redis killed while a job is at the gateway, five times over, and
the worker process is still there and sends every SMS once Redis is back. A worker killed with
`kill -9` takes its scheduler child with it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from models import SmsStatus
from tests.conftest import LiveServer, Phone
from tests.faults.conftest import RedisProcess, Stage, outbox
from tests.gateway_helpers import EmulatorProcess, fresh_number, wait_for
from tests.journeys import ask_for_help

pytestmark = pytest.mark.faults

OUTAGES = 5
HANG = 1.5  # the gateway takes this long to accept: Redis dies while the job waits on it


def children(pid: int) -> list[int]:
    """The processes `pid` started that are still alive (Linux's /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(n) for n in task.read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_the_worker_waits_out_redis_outages_during_jobs_and_goes_on(
    private_redis: RedisProcess, gateway: EmulatorProcess, stage: Stage, app_port: int, spawn_worker, figures
) -> None:
    settings, app = stage.settings, stage.app
    worker = spawn_worker(settings)
    survived = 0
    with LiveServer(app, app_port) as server:
        for _ in range(OUTAGES):
            if worker.process.poll() is not None:
                break  # the worker is gone: nothing more to observe
            gateway.post("/faults", json={"timeout_rate": 1, "timeout_seconds": HANG})
            ask_for_help(Phone(server.url, number=fresh_number()))
            wait_for(lambda: any(r.status == SmsStatus.SENDING for r in outbox(app)), timeout=20)
            private_redis.stop()  # the job is at the gateway; its bookkeeping will find no Redis
            time.sleep(HANG + 1)
            gateway.post("/faults", json={"timeout_rate": 0})
            private_redis.start()  # empty: queued jobs are gone, the outbox's sweeper finds the rows
            time.sleep(1)
            survived += worker.process.poll() is None
            figures.update(outages_survived=survived, worker_exit_code=worker.process.poll())
        assert survived == OUTAGES, worker.output()[-3000:]
        sent = wait_for(lambda: all(r.status == SmsStatus.ACCEPTED for r in outbox(app)), timeout=60)
        rows = outbox(app)
    figures.update(
        outages=OUTAGES,
        outages_survived=survived,
        worker_exit_code=worker.process.poll(),
        sms_in_outbox=len(rows),
        sms_accepted=sum(r.status == SmsStatus.ACCEPTED for r in rows),
    )
    assert sent and len(rows) == 2 * OUTAGES, figures


def test_a_killed_worker_leaves_no_scheduler_child(
    private_redis: RedisProcess, stage: Stage, spawn_worker, figures
) -> None:
    worker = spawn_worker(stage.settings)
    scheduler = wait_for(lambda: next(iter(children(worker.process.pid)), None), timeout=20)
    worker.kill()
    try:
        gone = wait_for(lambda: not alive(scheduler), timeout=10)
    except AssertionError:
        gone = False
    figures.update(scheduler_pid_seen=bool(scheduler), scheduler_gone_after_kill=bool(gone))
    if not gone:
        os.kill(scheduler, 9)  # leave nothing behind, whatever the verdict
    assert gone, figures
