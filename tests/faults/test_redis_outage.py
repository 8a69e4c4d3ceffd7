"""Redis dies (or hangs) in the middle of USSD journeys; nobody notices but the logs.

Phones dial over real HTTP as Africa's Talking relays them. While Redis is away every step is
rebuilt from the gateway's `text`, every referral is committed to the database, and its SMS wait
in the outbox; once Redis is back the worker's sweeper finds them there and each is sent once.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from sqlalchemy import func, select

from models import Referral
from tests.conftest import LiveServer, Phone
from tests.faults.conftest import RedisProcess, Stage, deliveries, outbox
from tests.gateway_helpers import EmulatorProcess, fresh_number, wait_for
from tests.journeys import code_in
from web.context import sira

pytestmark = pytest.mark.faults

# Dial as a newcomer, register on the way, ask for a job in Bamako, confirm (tests/journeys.py).
ANSWERS = ["1", "1", "Awa", "2", "3", "1", "1", "1", "1", "1", "1"]
REPLY_WITHIN = 2.0
MIN_OUTAGE = 3.0


class Journey:
    """One phone's walk through the menus, timing every reply."""

    def __init__(self, base_url: str) -> None:
        self.phone = Phone(base_url, number=fresh_number())
        self.replies: list[str] = []
        self.seconds: list[float] = []
        self.during_fault = 0

    @property
    def done(self) -> bool:
        return len(self.replies) == len(ANSWERS) + 1

    def step(self, fault: bool = False) -> None:
        started = time.perf_counter()
        reply = self.phone.send(ANSWERS[len(self.replies) - 1]) if self.replies else self.phone.dial()
        self.seconds.append(time.perf_counter() - started)
        self.replies.append(reply)
        self.during_fault += fault

    def walk(self, steps: int, fault: bool = False) -> None:
        for _ in range(steps):
            if not self.done:
                self.step(fault)


def same_screens(journey: Journey, reference: Journey) -> bool:
    """Every screen as in a journey without faults; the last differs only by the referral code."""
    code = next((w for w in journey.replies[-1].split() if len(w) == 5 and w.isupper() and w.isalnum()), "")
    last = reference.replies[-1].replace(code_in(reference.replies[-1]), code)
    return journey.replies[:-1] == reference.replies[:-1] and journey.replies[-1] == last


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_journeys_go_on_without_redis_and_every_sms_is_sent_once_it_is_back(
    fault: str,
    private_redis: RedisProcess,
    gateway: EmulatorProcess,
    stage: Stage,
    app_port: int,
    spawn_worker,
    figures,
) -> None:
    settings, app = stage.settings, stage.app
    spawn_worker(settings)
    with LiveServer(app, app_port) as server:
        reference = Journey(server.url)
        reference.walk(len(ANSWERS) + 1)
        assert reference.replies[-1].startswith("END ") and code_in(reference.replies[-1])
        wait_for(lambda: all(n == 1 for n in deliveries(app, gateway).values()), timeout=20)

        midway = [Journey(server.url) for _ in range(4)]
        for journey in midway:
            journey.walk(5)  # halfway through registration, state in Redis
        if fault == "killed":
            private_redis.stop()
        else:
            os.kill(private_redis.process.pid, signal.SIGSTOP)  # a Redis that hangs: no answer at all
        fault_started = time.monotonic()
        during = [Journey(server.url) for _ in range(2)]
        for _ in range(len(ANSWERS) + 1):
            for journey in midway + during:
                journey.walk(1, fault=True)
        time.sleep(max(0.0, MIN_OUTAGE - (time.monotonic() - fault_started)))  # long enough for the
        outage = time.monotonic() - fault_started  # worker to lose its connection and back off

        restarted = time.monotonic()
        if fault == "killed":
            private_redis.start()  # empty: every queued job and session state is gone
        else:
            os.kill(private_redis.process.pid, signal.SIGCONT)
        rows = outbox(app)
        delivered = wait_for(
            lambda: (counts := deliveries(app, gateway)) and all(counts.values()) and counts, timeout=30
        )
        recovery = time.monotonic() - restarted
        time.sleep(1.5)  # a few more sweeps: a duplicate would show now
        counts = deliveries(app, gateway)

    journeys = midway + during
    with sira(app).sessions() as session:
        referrals = session.scalar(select(func.count()).select_from(Referral))
    figures.update(
        fault=fault,
        replies_during_fault=sum(j.during_fault for j in journeys),
        slowest_reply_during_fault_s=round(max(s for j in journeys for s in j.seconds), 3),
        outage_s=round(outage, 1),
        referrals_committed=referrals,
        sms_in_outbox=len(rows),
        sms_delivered=sum(counts.values()),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        recovery_s=round(recovery, 1),
    )
    assert all(s < REPLY_WITHIN for j in journeys for s in j.seconds), figures
    for journey in journeys:
        assert journey.done, journey.replies
        if not same_screens(journey, reference):
            step = next(
                (
                    i
                    for i, (a, b) in enumerate(zip(journey.replies, reference.replies, strict=True))
                    if a != b
                ),
                -1,
            )
            pytest.fail(f"step {step} differs: {journey.replies[step]!r} != {reference.replies[step]!r}")
    assert referrals == 1 + len(journeys)
    codes = {code_in(j.replies[-1]) for j in journeys}
    with sira(app).sessions() as session:
        assert codes <= set(session.scalars(select(Referral.code)))
    assert len(rows) == 2 * referrals  # an alert to the provider and a confirmation to the returnee
    assert delivered and all(n == 1 for n in counts.values()), counts
