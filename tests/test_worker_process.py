"""The worker as the Procfile starts it: its own process, checking its services first."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from redis import Redis
from sqlalchemy import select

from models import OutboundSms, SmsStatus
from tests.conftest import ROOT, Phone, worker_environ
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, ask_for_help, messages, seeded_app
from web.context import sira

pytestmark = pytest.mark.process  # its own processes (worker, gunicorn): not in `make check`


def worker_env(database_url: str, gateway_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, **worker_environ(database_url, gateway_url), **extra}


def test_flask_worker_command_sends_the_queued_sms(
    database_url: str, redis: Redis, gateway: EmulatorProcess, app_port: int
) -> None:
    from tests.conftest import LiveServer

    app = seeded_app(database_url, gateway)
    with LiveServer(app, app_port) as server:
        ask_for_help(Phone(server.url, number=RETURNEE))
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"],
            cwd=ROOT, env=worker_env(database_url, gateway.url), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(m["to"] for m in messages(gateway)) == ["+22370000002", RETURNEE]
    with sira(app).sessions() as session:
        assert {r.status for r in session.scalars(select(OutboundSms))} == {SmsStatus.ACCEPTED}
    assert "70000101" not in result.stderr  # the worker's log names message ids, never numbers


def test_flask_worker_refuses_to_start_when_redis_is_down(database_url: str) -> None:
    env = worker_env(database_url, "http://127.0.0.1:1", REDIS_URL="redis://127.0.0.1:1/0")
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert (
        result.returncode != 0 and "redis not answering" in result.stderr and "Traceback" not in result.stderr
    )


def test_long_running_worker_picks_up_a_referral_promptly_after_idling(
    database_url: str, redis: Redis, gateway: EmulatorProcess, app_port: int
) -> None:
    """The Procfile's worker blocks on its queues; it must not time out and back off while idle."""
    import time

    from tests.conftest import LiveServer
    from tests.gateway_helpers import wait_for

    app = seeded_app(database_url, gateway)
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"],
        cwd=ROOT, env=worker_env(database_url, gateway.url), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # idle, blocked on the queues
        with LiveServer(app, app_port) as server:
            ask_for_help(Phone(server.url, number=RETURNEE))
            wait_for(lambda: len(messages(gateway)) == 2, timeout=10)
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert "could not connect to Redis" not in stderr  # a read time-out while blocked on the queues
    # Quiet at INFO: none of RQ's per-job lines for the cron's housekeeping (every few seconds),
    # while the work done is still said, in Sira's own words.
    routine = [
        line for line in stderr.splitlines() if re.search(r"Job OK|Enqueued job|Successfully completed", line)
    ]
    assert routine == [], routine
    assert len(re.findall(r"INFO workers\.sms: sms \d+: ", stderr)) == 2, stderr
