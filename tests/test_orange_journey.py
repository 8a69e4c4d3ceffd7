"""A referral's SMS through Orange's API, end to end: the USSD webhook, a real RQ worker with
SMS_GATEWAY=orange, the emulator's Orange face over HTTP, and its callbacks to the live app.

The worker is RQ's `SimpleWorker`, as in production, so its gateway (and the token it caches)
lives across jobs as it does in a real worker process.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select

from infra import queues
from models import OutboundSms, Referral, SmsStatus
from models.base import as_utc, utcnow
from tests.conftest import REDIS_URL, Phone
from tests.conftest import run_worker as run_worker_at
from tests.gateway_helpers import EmulatorProcess, wait_for
from tests.journeys import RETURNEE, app_with_directory, ask_for_help, code_in, settings_for

APEJ = "+22370000002"  # jobs in Bamako, first choice


pytestmark = pytest.mark.usefixtures("fresh_worker_process")


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return app_with_directory(
        settings_for(database_url, gateway, sms_gateway="orange", orange_api_url=gateway.url)
    )


def run_worker(database_url: str, gateway: EmulatorProcess, orange_url: str | None = None) -> None:
    """The worker, sending through the emulator's Orange face (or `orange_url`); AT unreachable."""
    run_worker_at(database_url, sms_gateway="orange", orange_api_url=orange_url or gateway.url)


def set_faults(gateway: EmulatorProcess, **faults: object) -> None:
    response = gateway.post("/faults", json=faults)
    assert response.status_code == 200, response.text


def tokens_issued(gateway: EmulatorProcess) -> int:
    return int(gateway.get("/faults").json()["tokens_issued"])


def sent_by_orange(gateway: EmulatorProcess, number: str) -> list[dict]:
    return [m for m in gateway.get("/messages").json() if m["to"] == number and m.get("gateway") == "orange"]


def outbox(db) -> list[OutboundSms]:
    db.expire_all()
    return list(db.scalars(select(OutboundSms).order_by(OutboundSms.id)))


def sweep(database_url: str, gateway: EmulatorProcess, after: timedelta) -> None:
    """The outbox sweep as the worker's cron runs it, at a clock `after` from now."""
    with Redis.from_url(REDIS_URL) as redis:
        Queue(queues.DEFAULT, connection=redis).enqueue(
            "workers.outbox.sweep_outbox", (utcnow() + after).isoformat()
        )
    run_worker(database_url, gateway)


@pytest.fixture
def referral_code(live_server, gateway: EmulatorProcess, database_url: str) -> str:
    """A returnee in Bamako asked for a job; APEJ has been alerted, through Orange."""
    code = code_in(ask_for_help(Phone(live_server.url, number=RETURNEE)))
    run_worker(database_url, gateway)
    assert sent_by_orange(gateway, APEJ)
    return code


def test_a_referral_s_sms_go_through_orange_on_one_token_and_receipts_move_their_status(
    db, gateway, database_url, live_server
) -> None:
    code = code_in(ask_for_help(Phone(live_server.url, number=RETURNEE)))
    run_worker(database_url, gateway)
    [alert] = sent_by_orange(gateway, APEJ)
    assert code in alert["text"] and alert["from"] == "SIRA"
    assert code in sent_by_orange(gateway, RETURNEE)[0]["text"]
    assert tokens_issued(gateway) == 1  # several jobs, one token
    rows = outbox(db)
    assert {r.status for r in rows} == {SmsStatus.ACCEPTED} and len(rows) >= 2
    assert {r.gateway_id for r in rows} == {"orange:" + m["id"] for m in gateway.get("/messages").json()}
    assert {r.route for r in rows} == {"orange"}
    wait_for(lambda: all(r.delivery_status == "Success" for r in outbox(db)), timeout=5)


def test_a_provider_s_ok_code_through_orange_accepts_the_referral(
    db, gateway, database_url, referral_code
) -> None:
    response = gateway.post("/orange/send-from-phone", json={"from": APEJ, "text": f"OK {referral_code}"})
    assert response.status_code == 200 and response.json()["status_code"] == 200, response.text
    run_worker(database_url, gateway)
    db.expire_all()
    assert db.scalar(select(Referral.status).where(Referral.code == referral_code)) == "accepted"
    disclosure = sent_by_orange(gateway, APEJ)[-1]["text"]
    assert "Awa" in disclosure and RETURNEE in disclosure and f"FINI {referral_code}" in disclosure


def test_an_expired_token_is_renewed_once_and_the_sms_goes(db, gateway, database_url, referral_code) -> None:
    set_faults(gateway, expire_tokens=True)  # the worker still holds the token it was given
    gateway.post("/orange/send-from-phone", json={"from": APEJ, "text": f"OK {referral_code}"})
    run_worker(database_url, gateway)
    assert tokens_issued(gateway) == 2
    assert {r.status for r in outbox(db)} == {SmsStatus.ACCEPTED}
    assert len(sent_by_orange(gateway, APEJ)) == 2  # the alert, then the disclosure


def test_an_exhausted_bundle_holds_the_sms_until_staff_top_it_up(
    db, gateway, database_url, live_server
) -> None:
    set_faults(gateway, orange_balance=0)
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    run_worker(database_url, gateway)
    rows = outbox(db)
    assert {r.status for r in rows} == {SmsStatus.HELD} and all("bundle" in r.last_error for r in rows)
    assert sent_by_orange(gateway, APEJ) == []
    set_faults(gateway, orange_balance=100)
    sweep(database_url, gateway, after=timedelta(hours=1))
    assert {r.status for r in outbox(db)} == {SmsStatus.ACCEPTED} and len(sent_by_orange(gateway, APEJ)) == 1


def test_a_429_waits_for_its_retry_after_before_the_next_try(db, gateway, database_url, live_server) -> None:
    set_faults(gateway, throttle_next=1, retry_after_seconds=120)
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    run_worker(database_url, gateway)  # RQ's own retry would come at once (intervals 0,0,0)
    [throttled] = [r for r in outbox(db) if r.status != SmsStatus.ACCEPTED]
    assert throttled.status == SmsStatus.PENDING and throttled.gateway_status == "HTTP 429"
    assert as_utc(throttled.next_attempt_at) >= utcnow() + timedelta(seconds=110)
    sweep(database_url, gateway, after=timedelta(seconds=60))
    assert outbox(db)[[r.id for r in outbox(db)].index(throttled.id)].status == SmsStatus.PENDING
    sweep(database_url, gateway, after=timedelta(seconds=130))
    assert {r.status for r in outbox(db)} == {SmsStatus.ACCEPTED}


def test_a_5xx_is_retried_and_the_sms_goes(db, gateway, database_url, live_server) -> None:
    set_faults(gateway, fail_next=1)
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    run_worker(database_url, gateway)
    rows = outbox(db)
    assert {r.status for r in rows} == {SmsStatus.ACCEPTED}
    assert sorted(r.attempts for r in rows)[-1] == 2
    assert len(sent_by_orange(gateway, APEJ)) == 1
