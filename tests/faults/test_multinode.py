"""More than one node, on loopback: two app instances behind one nginx, two workers, PostgreSQL,
and Redis behind Sentinel, losing an app instance, the Redis primary and a worker mid-traffic.

Returnees dial through the shipped nginx configuration (deploy/nginx/sira.conf, its upstream
holding the two callback pools) as Africa's Talking relays them, register and ask for help, so
that every journey makes a referral and its SMS go through the workers to the gateway emulator.
The app instances and the workers find Redis through Sentinel (REDIS_SENTINELS). While they dial:

1. one app instance is killed (SIGKILL, master and workers): nginx passes what it sent there to
   the other instance, sessions under way carry on there, and no step fails twice in a row;
2. the Redis primary is killed: Sentinel promotes the replica, the app and the workers follow it;
3. a worker is killed in the middle of a send: the other takes its jobs (and the dead one's
   claimed SMS, once its lease lapses).

Then no referral and no SMS is missing: the referrals in the database are the ones the phones were
given a code for, and the gateway received every SMS of the outbox. A step that fails is sent
again once, as a gateway retries; the scenario prints what it observed.
"""

from __future__ import annotations

import collections
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from flask import Flask
from redis import Redis
from sqlalchemy import select

from infra.referral_code import is_code
from models import Referral, SmsStatus
from models.base import as_utc, utcnow
from tests.conftest import BACKENDS, Phone
from tests.faults.conftest import WorkerProcess, deliveries, fault_settings, outbox
from tests.faults.fronts import GunicornPool, NginxFront, front_phone
from tests.gateway_helpers import EmulatorProcess, wait_for
from tests.journeys import app_with_directory, code_in, help_answers
from tests.sentinels import MASTER, RedisPair
from web.context import sira

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]

PHONES = 4
JOURNEYS_AFTER_EACH_FAULT = 3
ANSWERS = help_answers()  # a newcomer registers on the way and asks for help
GATEWAY_HANG = 0.5  # the gateway's wait before it accepts, while a worker is killed mid-send


@pytest.fixture
def backend() -> str:
    """Several machines share one PostgreSQL: SQLite is no such database."""
    if "postgresql" not in BACKENDS:
        pytest.skip("the multi-node scenario runs on PostgreSQL (TEST_DATABASES)")
    return "postgresql"


@dataclass
class Journey:
    """One returnee's session: when it began, how it went, and the referral code it was given."""

    started: float
    ended: float | None = None
    code: str | None = None
    failures: int = 0  # steps that failed once (answered at their retry)
    failed_twice: bool = False
    last: str = ""  # the last screen or failure, for the report of a scenario that failed


@dataclass
class Traffic:
    """Phones dialling through the front, one journey after another, until told to stop."""

    front: NginxFront
    stop: threading.Event = field(default_factory=threading.Event)
    journeys: list[Journey] = field(default_factory=list)
    steps: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, phones: int) -> Traffic:
        self.threads = [threading.Thread(target=self._dial, daemon=True) for _ in range(phones)]
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in self.threads), "a phone is still dialling"

    def wait_for_journeys(self, moment: float, count: int) -> None:
        """Until `count` journeys begun after `moment` are complete (or say how the last ones went)."""
        try:
            wait_for(lambda: self.completed_since(moment) >= count, timeout=60, interval=0.1)
        except AssertionError:
            with self.lock:
                raise AssertionError(f"journeys did not complete: {self.journeys[-PHONES * 2 :]}") from None

    def completed_since(self, moment: float) -> int:
        with self.lock:
            return sum(1 for j in self.journeys if j.started > moment and j.code is not None)

    def _dial(self) -> None:
        while not self.stop.is_set():
            journey = Journey(time.monotonic())
            with self.lock:
                self.journeys.append(journey)
            phone = front_phone(self.front)
            screen = self._step(phone, journey, None, last=False)
            for number, answer in enumerate(ANSWERS, 1):
                if screen is None:
                    break
                screen = self._step(phone, journey, answer, last=number == len(ANSWERS))
            if screen is not None:
                journey.code = code_in(screen)
            journey.ended = time.monotonic()

    def _step(self, phone: Phone, journey: Journey, answer: str | None, last: bool) -> str | None:
        """One step; if it fails, the gateway sends the same request again, once."""
        for attempt in range(2):
            try:
                screen = _request(phone, answer, again=attempt > 0)
            except (AssertionError, requests.RequestException) as exc:
                screen = None  # a 5xx or a dropped connection
                journey.last = repr(exc)[:300]
            with self.lock:
                self.steps += 1
            if screen is not None and _answered(screen, last):
                return screen
            journey.last = f"{answer!r}: {screen or journey.last}"
            journey.failures += 1
        journey.failed_twice = True
        return None


def _request(phone: Phone, answer: str | None, again: bool) -> str:
    """The gateway's request: a dial, an answer, or the last request sent again unchanged."""
    if again:
        return phone.repeat()
    return phone.dial() if answer is None else phone.send(answer)


def _answered(screen: str, last: bool) -> bool:
    """The screen a step should get: the next question, or at the end the referral's code."""
    if last:
        return screen.startswith("END ") and any(is_code(word) for word in screen.split())
    return screen.startswith("CON ")


@dataclass
class Cluster:
    settings: dict[str, object]
    app: Flask
    pools: list[GunicornPool]
    front: NginxFront
    redis: RedisPair


@pytest.fixture
def cluster(
    database_url: str, gateway: EmulatorProcess, tmp_path: Path, spawn_worker
) -> Iterator[tuple[Cluster, list]]:
    """Redis with Sentinel, two app instances behind nginx, two workers, all through Sentinel."""
    redis = RedisPair(tmp_path).start()
    sentinel = {"redis_url": "redis://127.0.0.1:1/3", "redis_sentinel_master": MASTER,
                "redis_sentinels": f"127.0.0.1:{redis.ports['sentinel']}"}  # fmt: skip
    settings = fault_settings(database_url, str(sentinel.pop("redis_url")), gateway, tmp_path / "spool",
                              trusted_proxies=1, **sentinel)  # fmt: skip
    app = app_with_directory(settings)
    # The second instance stands for another machine: nginx reaches it on another address
    # (127.0.0.2, loopback too), where it listens besides 127.0.0.1 (docs/operations.md).
    pools = [GunicornPool("instance-a", settings, tmp_path / "instance-a.log", WEB_CONCURRENCY="1"),
             GunicornPool("instance-b", settings, tmp_path / "instance-b.log", private_host="127.0.0.2",
                          WEB_CONCURRENCY="1")]  # fmt: skip
    started: list[GunicornPool | NginxFront | WorkerProcess] = []
    try:
        for pool in pools:
            started.append(pool.start())
        front = NginxFront(tmp_path, pools, admin=None).start()
        started.append(front)
        workers = [spawn_worker(settings), spawn_worker(settings)]
        started += workers
        yield Cluster(settings, app, pools, front, redis), workers
    finally:
        for process in reversed(started):
            process.stop()  # the workers first, while Redis still answers
        redis.stop()


def test_two_nodes_lose_an_app_instance_the_redis_primary_and_a_worker_mid_traffic(
    cluster: tuple[Cluster, list], gateway: EmulatorProcess, figures
) -> None:
    stage, workers = cluster
    front, app = stage.front, stage.app
    traffic = Traffic(front).start(PHONES)
    try:
        began = time.monotonic()
        traffic.wait_for_journeys(began, 2)
        assert {ports[-1] for _, status, ports in front.served() if status == 200} >= {
            pool.port for pool in stage.pools
        }, "both instances served before one is killed"

        # 1. One app instance dies with everything it was doing.
        dead, alive = stage.pools
        logged_before = len(front.served())  # before the kill: nginx's first try of the dead one
        app_killed = time.monotonic()  # may follow within microseconds, and mark it down for 10 s
        dead.kill()
        traffic.wait_for_journeys(app_killed, JOURNEYS_AFTER_EACH_FAULT)
        after_kill = front.served()[logged_before:]
        statuses_after_kill = collections.Counter(status for _, status, _ in after_kill)
        carried_on = sum(1 for j in traffic.journeys if j.started < app_killed < (j.ended or 0) and j.code)

        # 2. The Redis primary dies; Sentinel promotes the replica.
        redis_killed = time.monotonic()
        stage.redis.kill_primary()
        promoted_after = time.monotonic() - redis_killed
        failed_over_at = utcnow()
        traffic.wait_for_journeys(redis_killed, JOURNEYS_AFTER_EACH_FAULT)
        with Redis(port=stage.redis.ports["replica"]) as new_primary:
            assert new_primary.info("replication")["role"] == "master"
        # SMS of referrals made since are queued on the new primary, and the workers send them
        made_before = max((r.id for r in outbox(app) if as_utc(r.created_at) <= failed_over_at), default=0)
        sent_after_failover = wait_for(
            lambda: [r for r in outbox(app) if r.id > made_before and r.status == SmsStatus.ACCEPTED],
            timeout=60,
            interval=0.2,
        )

        # 3. A worker dies in the middle of a send: the gateway is slow, both workers are sending.
        gateway.post("/faults", json={"timeout_rate": 1, "timeout_seconds": GATEWAY_HANG})
        wait_for(lambda: sum(1 for r in outbox(app) if r.status == SmsStatus.SENDING) >= 2, timeout=60,
                 interval=0.05)  # fmt: skip
        victims = {r.id for r in outbox(app) if r.status == SmsStatus.SENDING}
        worker_killed = time.monotonic()
        workers[0].kill()
        gateway.post("/faults", json={"timeout_rate": 0})
        # A send claimed between the first look and the kill died with the worker too (it stays
        # SENDING until recovered): the gateway may have counted it, and its retry sends it again.
        victims |= {r.id for r in outbox(app) if r.status == SmsStatus.SENDING}
        traffic.wait_for_journeys(worker_killed, JOURNEYS_AFTER_EACH_FAULT)
    finally:
        traffic.finish()

    made = {j.code for j in traffic.journeys if j.code}
    wait_for(lambda: all(r.status == SmsStatus.ACCEPTED for r in outbox(app)), timeout=60, interval=0.2)
    worker_recovery = time.monotonic() - worker_killed
    counts = deliveries(app, gateway)
    with sira(app).sessions() as session:
        referrals = set(session.scalars(select(Referral.code)))
    journeys = traffic.journeys
    figures.update(
        steps=traffic.steps,
        journeys=sum(1 for j in journeys if j.code),
        steps_failed_once=sum(j.failures for j in journeys),
        steps_failed_twice=sum(1 for j in journeys if j.failed_twice),
        requests_after_the_kill=dict(statuses_after_kill),
        passed_from_the_dead_instance=sum(1 for _, _, ports in after_kill if dead.port in ports[:-1]),
        sessions_carried_across_the_kill=carried_on,
        sentinel_promoted_s=round(promoted_after, 1),
        sms_sent_after_failover=len(sent_after_failover),
        worker_victims=len(victims),
        worker_recovery_s=round(worker_recovery, 1),
        referrals_made=len(made),
        referrals_in_db=len(referrals),
        sms_in_outbox=len(counts),
        sms_delivered=sum(counts.values()),
        sms_duplicates=sum(n - 1 for n in counts.values() if n > 1),
    )
    assert not [j for j in journeys if j.failed_twice], "a step failed twice in a row"
    assert carried_on, "no session under way when the instance died went on to its referral"
    # nginx sent the dead instance's share to the other one; nothing came back as an error
    assert any(dead.port in ports[:-1] for _, _, ports in after_kill), after_kill
    assert all(status == 200 for status in statuses_after_kill), statuses_after_kill
    assert after_kill[-1][2][-1] == alive.port
    assert made and referrals == made, "every referral a phone was told of is in the database, no other"
    assert counts and all(n >= 1 for n in counts.values()), counts  # every SMS reached the gateway
    assert all(n <= 2 for sms_id, n in counts.items() if sms_id in victims), counts
    assert all(n == 1 for sms_id, n in counts.items() if sms_id not in victims), counts
