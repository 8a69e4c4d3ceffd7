"""Redis behind Sentinel (REDIS_SENTINELS): the app and a worker find the primary through
Sentinel, and follow it when it fails over in the middle of a returnee's USSD session; the
referral is made, its SMS are sent once, and no step is answered with a failure.

Starts its own Redis primary, replica and Sentinel (`redis-server --sentinel`) on free ports.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import Queue

from config import ConfigError, load_settings
from infra import queues
from tests.conftest import LiveServer, Phone, free_port
from tests.gateway_helpers import EmulatorProcess, wait_for
from tests.journeys import RETURNEE, app_with_directory, code_in, inbox, run_worker, settings_for
from web.context import sira

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

APEJ = "+22370000002"  # jobs in Bamako, first choice
MASTER = "sira"


class RedisPair:
    """A primary, its replica and one Sentinel watching them, each a `redis-server` of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> RedisPair:
        primary, replica, sentinel = self.ports.values()
        # --dir: a replica's first sync writes an RDB file, which belongs in the test's folder.
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self._spawn(["redis-server", "--port", str(primary), *common])
        self._spawn(
            ["redis-server", "--port", str(replica), *common, "--replicaof", "127.0.0.1", str(primary)]
        )
        conf = self.directory / "sentinel.conf"  # Sentinel rewrites its file: one of its own
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 5000\n"
        )
        self._spawn(["redis-server", str(conf), "--sentinel"])
        wait_for(lambda: self._replicas_known(), timeout=20, interval=0.2)
        return self

    def _spawn(self, command: list[str]) -> None:
        log = (self.directory / f"redis-{len(self.processes)}.log").open("wb")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))

    def sentinel(self) -> Redis:
        return Redis(port=self.ports["sentinel"], socket_timeout=1, decode_responses=True)

    def primary_port(self) -> int | None:
        try:
            host_port = self.sentinel().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        except Exception:
            return None
        return int(host_port[1]) if host_port else None

    def _replicas_known(self) -> bool:
        try:
            replicas = self.sentinel().execute_command("SENTINEL", "REPLICAS", MASTER)
            in_sync = Redis(port=self.ports["replica"]).info("replication").get("master_link_status") == "up"
        except Exception:
            return False
        return bool(replicas) and in_sync

    def fail_over(self) -> None:
        self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER)
        wait_for(lambda: self.primary_port() == self.ports["replica"], timeout=20, interval=0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(10)


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
