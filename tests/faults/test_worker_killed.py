"""A worker killed with `kill -9` in the middle of a send: the message still goes, once if it can.

The row is claimed in the database before the gateway is called, so the dead worker's claim
outlives it; the sweeper of another worker takes it back after SMS_CLAIM_LEASE_SECONDS and
queues it again. If the gateway never took the message it is sent exactly once; if it took it
and the worker died before writing so, it is sent a second time (at most), which no design that
calls a gateway without an idempotency key can avoid.
"""

from __future__ import annotations

import time

import pytest
from redis import Redis
from rq.registry import StartedJobRegistry
from sqlalchemy import select

from infra import queues
from models import OutboundSms, SmsStatus
from tests.conftest import LiveServer, Phone
from tests.faults.conftest import RedisProcess, Stage, deliveries, outbox
from tests.gateway_helpers import EmulatorProcess, fresh_number, wait_for
from tests.journeys import ask_for_help
from web.context import sira

pytestmark = pytest.mark.faults

HANG = 1.5  # the gateway takes this long to accept, shorter than the client's time-out


@pytest.mark.parametrize("moment", ["before_accepted", "after_accepted"])
def test_a_worker_killed_mid_send_leaves_nothing_unsent(
    moment: str,
    private_redis: RedisProcess,
    gateway: EmulatorProcess,
    stage: Stage,
    app_port: int,
    spawn_worker,
    figures,
) -> None:
    settings, app = stage.settings, stage.app
    gateway.post("/faults", json={"timeout_rate": 1, "timeout_seconds": HANG})
    doomed = spawn_worker(settings)
    with LiveServer(app, app_port) as server:
        ask_for_help(Phone(server.url, number=fresh_number()))
        victim = wait_for(lambda: next((r for r in outbox(app) if r.status == SmsStatus.SENDING), None), 20)
        time.sleep(HANG / 3)  # the request is at the gateway, which has not answered yet
        doomed.kill()
        killed = time.monotonic()
        if moment == "before_accepted":
            # The connection died with the worker before the gateway answered: it never took the
            # message (the emulator drops work begun before a reset).
            gateway.post("/reset")
        else:
            gateway.post("/faults", json={"timeout_rate": 0})
            wait_for(lambda: deliveries(app, gateway)[victim.id] == 1, timeout=5)  # accepted, not recorded
            assert next(r for r in outbox(app) if r.id == victim.id).status == SmsStatus.SENDING
        spawn_worker(settings)
        wait_for(lambda: all(r.status == SmsStatus.ACCEPTED for r in outbox(app)), timeout=60)
        recovery = time.monotonic() - killed
        # RQ finds the dead worker's job only once its heartbeat lapses (job time-out + 60 s);
        # run that clean-up an hour early: the job was sent again since, so RQ must not retry it.
        with Redis.from_url(private_redis.url) as redis:
            started = StartedJobRegistry(queues.SMS, connection=redis)
            abandoned = started.get_expired_job_ids(time.time() + 3600)
            started.cleanup(time.time() + 3600)
        time.sleep(1.5)  # more sweeps: a late duplicate would show now
        counts = deliveries(app, gateway)
    with sira(app).sessions() as session:
        attempts = session.scalar(select(OutboundSms.attempts).where(OutboundSms.id == victim.id))
    figures.update(
        moment=moment,
        sms_in_outbox=len(counts),
        sms_delivered=sum(counts.values()),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
        recovery_s=round(recovery, 1),
        victim_attempts=attempts,
    )
    assert queues.sms_job_id(victim.id) in abandoned  # the dead worker's entry, handled without a resend
    others = [n for sms_id, n in counts.items() if sms_id != victim.id]
    assert others and all(n == 1 for n in others), counts
    if moment == "before_accepted":
        assert counts[victim.id] == 1
    else:
        assert counts[victim.id] <= 2
    assert attempts == 2 and recovery < 30
