"""Redis behind Sentinel (REDIS_SENTINELS): the app and a worker find the primary through
Sentinel, and follow it when it fails over in the middle of a returnee's USSD session; the
referral is made, its SMS are sent once, and no step is answered with a failure.

Starts its own Redis primary, replica and Sentinel (`redis-server --sentinel`) on free ports.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from config import ConfigError, load_settings
from infra import queues
from tests.conftest import LiveServer, Phone
from tests.gateway_helpers import EmulatorProcess, wait_for
from tests.journeys import RETURNEE, app_with_directory, code_in, inbox, run_worker, settings_for
from tests.sentinels import MASTER, RedisPair
from web.context import sira

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

APEJ = "+22370000002"  # jobs in Bamako, first choice


pytestmark = pytest.mark.usefixtures("fresh_worker_process")


@pytest.fixture
def redis_pair(tmp_path: Path) -> Iterator[RedisPair]:
    pair = RedisPair(tmp_path).start()
    yield pair
    pair.stop()


def sentinel_settings(pair: RedisPair) -> dict[str, object]:
    # The host of REDIS_URL is not used: Sentinel names the primary; the URL gives the database.
    return {"redis_url": "redis://127.0.0.1:1/3", "redis_sentinels": f"127.0.0.1:{pair.ports['sentinel']}",
            "redis_sentinel_master": MASTER}  # fmt: skip


@pytest.fixture
def app(database_url: str, redis_pair: RedisPair, gateway: EmulatorProcess) -> Flask:
    return app_with_directory(settings_for(database_url, gateway, **sentinel_settings(redis_pair)))


def run_worker_through_sentinel(database_url: str, gateway: EmulatorProcess, pair: RedisPair) -> None:
    """Sira's worker in burst mode, connected as `flask worker` connects: through Sentinel."""

    def sweep(redis: Redis) -> None:  # as the cron would
        Queue(queues.DEFAULT, connection=redis).enqueue("workers.outbox.sweep_outbox")

    run_worker(database_url, gateway, before=sweep, **sentinel_settings(pair))


def test_the_app_and_the_worker_follow_redis_when_sentinel_fails_it_over_mid_session(
    app: Flask, live_server: LiveServer, gateway: EmulatorProcess, database_url: str, redis_pair: RedisPair
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    answers = ["1", "1", "Awa", "2", "3", "1", "1", "1", "1", "1", "1"]  # tests/journeys.ask_for_help
    screens = [phone.dial()] + [phone.send(answer) for answer in answers[:4]]
    state_keys = Redis(port=redis_pair.ports["primary"], db=3).keys("ussd:s:*")
    assert state_keys, "the session's state is kept in the primary Sentinel named"

    redis_pair.fail_over()
    started = time.monotonic()
    screens += [phone.send(answer) for answer in answers[4:]]
    print(f"\nafter the failover, the session's last 7 steps took {time.monotonic() - started:.2f} s")

    assert all(screen.startswith("CON ") for screen in screens[:-1]), screens
    assert "Service unavailable" not in " ".join(screens)
    code = code_in(screens[-1])
    # The app asks Sentinel afresh; right after a switch, Sentinel's own view may still settle.
    pool = sira(app).redis.connection_pool
    wanted = ("127.0.0.1", redis_pair.ports["replica"])
    wait_for(lambda: pool.get_master_address() == wanted, timeout=10, interval=0.1)
    assert pool.get_master_address() == wanted
    assert Redis(port=redis_pair.ports["replica"], db=3).exists(*state_keys), (
        "the new primary holds the session"
    )

    run_worker_through_sentinel(database_url, gateway, redis_pair)
    assert [message for message in inbox(gateway, APEJ) if code in message]
    assert len(inbox(gateway, APEJ)) == 1 and len(inbox(gateway, RETURNEE)) == 1  # each sent once


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:port", ":26379"])
def test_a_malformed_sentinel_address_fails_at_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_SENTINELS"):
        load_settings({"REDIS_SENTINELS": value})
