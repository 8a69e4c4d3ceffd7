"""Routing per operator, from the outside: two routes, each a real emulator process (Africa's
Talking on one, Orange's face on the other), the live app taking their callbacks, and a real RQ
SimpleWorker configured through the environment with SMS_ROUTES and SMS_ROUTE_PREFIXES.

Orange numbers (7x) go by Africa's Talking first, then Orange; Moov numbers (6x) the other way.
Killing the AT emulator mid-run must move its messages to Orange within their first attempt,
none sent twice; starting it again must bring the traffic back after the cool-down.

The cool-down is far longer than any test, so that it cannot end on its own while a slow machine
runs the part that needs it; the test ends it when it means to (end_cooldown), as its expiry does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from infra import keys, queues
from models import OutboundSms, Referral, SmsStatus
from models.base import utcnow
from tests.conftest import ORANGE_SENDER, REDIS_URL, Phone, app_settings
from tests.conftest import run_worker as run_worker_at
from tests.gateway_helpers import EmulatorProcess, end_cooldown, start_emulator, wait_for
from tests.journeys import app_with_directory, ask_for_help, code_in

APEJ = "+22370000002"  # jobs in Bamako, first choice; an Orange number
FIRST, SECOND = "+22370000101", "+22370000102"  # two returnees, both on Orange
PREFIXES = "7 82-84 90-94=at,orange; 6 89 95-99=orange,at; *=at,orange"
FAILURES = 2
REPORTS_WAIT = 60  # a ceiling for a loaded machine: the wait ends as soon as the reports land
COOLDOWN = 3600  # never ends on its own during a test: see end_cooldown


pytestmark = pytest.mark.usefixtures("fresh_worker_process")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("routes")


@pytest.fixture(scope="module")
def emulators(app_port: int, logs: Path) -> Iterator[dict[str, EmulatorProcess]]:
    """Two gateways, each its own process: AT's face of one, Orange's face of the other."""
    base = f"http://127.0.0.1:{app_port}"
    running = {name: start_emulator(base, logs / f"{name}.log") for name in ("at", "orange")}
    yield running
    for emulator in running.values():
        if emulator.process.poll() is None:
            emulator.stop()


@pytest.fixture
def at(emulators: dict[str, EmulatorProcess], logs: Path) -> EmulatorProcess:
    if emulators["at"].process.poll() is not None:  # a test stopped it: start it again
        emulators["at"] = restart(emulators["at"], logs)
    emulators["at"].post("/reset")
    return emulators["at"]


@pytest.fixture
def orange(emulators: dict[str, EmulatorProcess]) -> EmulatorProcess:
    emulators["orange"].post("/reset")
    return emulators["orange"]


def restart(stopped: EmulatorProcess, logs: Path) -> EmulatorProcess:
    """The same emulator again, on the same port and with the same callbacks, as a gateway that
    comes back up."""
    args = stopped.process.args
    callback_base = str(args[args.index("--callback-base") + 1])
    return start_emulator(callback_base, logs / "at.log", port=int(stopped.url.rsplit(":", 1)[1]))


def routes(at: EmulatorProcess, orange: EmulatorProcess) -> str:
    return f"at=africastalking?api_url={at.url}&cost=XOF 25; orange=orange?api_url={orange.url}&cost=XOF 20"


@pytest.fixture
def app(database_url: str, redis: Redis, at: EmulatorProcess, orange: EmulatorProcess) -> Flask:
    # Redis given the time a loaded machine may take: past the app's 0.5 s, the send jobs would be
    # left for the outbox sweep (as they must be when Redis is away), not run by the next worker.
    settings = app_settings(database_url, sms_retry_intervals="0,0,0", sms_routes=routes(at, orange),
                            sms_route_prefixes=PREFIXES, redis_socket_timeout_seconds=10)  # fmt: skip
    return app_with_directory(settings)


def run_worker(
    database_url: str, at: EmulatorProcess, orange: EmulatorProcess, prefixes: str = PREFIXES
) -> None:
    """The worker with its routes given through the environment, as in production."""
    run_worker_at(database_url, sms_routes=routes(at, orange), sms_route_prefixes=prefixes,
                  sms_route_failures=FAILURES, sms_route_cooldown_seconds=COOLDOWN)  # fmt: skip


def outbox(db) -> list[OutboundSms]:
    db.expire_all()
    return list(db.scalars(select(OutboundSms).order_by(OutboundSms.id)))


def sent(emulator: EmulatorProcess, face: str) -> list[dict]:
    """What an emulator's face took: Orange's messages carry gateway=orange, AT's none."""
    return [m for m in emulator.get("/messages").json()
            if m["direction"] == "outbound" and (m.get("gateway") == "orange") == (face == "orange")]  # fmt: skip


def test_a_dead_route_s_messages_leave_by_the_next_and_come_back_when_it_recovers(
    db, redis: Redis, at: EmulatorProcess, orange: EmulatorProcess, database_url: str, live_server,
    emulators: dict[str, EmulatorProcess], logs: Path,
) -> None:  # fmt: skip
    # Both routes up: Orange numbers go by Africa's Talking, their first route.
    first_code = code_in(ask_for_help(Phone(live_server.url, number=FIRST)))
    run_worker(database_url, at, orange)
    before = outbox(db)
    assert before and {(r.status, r.route) for r in before} == {(SmsStatus.ACCEPTED, "at")}
    assert len(sent(at, "at")) == len(before) and sent(orange, "orange") == []
    wait_for(lambda: all(r.delivery_status == "Success" for r in outbox(db)), timeout=REPORTS_WAIT)

    # AT dies mid-run: the next referral's SMS leave by Orange, each on its first attempt, once;
    # after FAILURES of them AT is skipped, so the provider's answer's SMS do not even try it.
    at.stop()
    ask_for_help(Phone(live_server.url, number=SECOND))
    run_worker(database_url, at, orange)
    assert redis.exists(keys.route_down("at"))
    answer = orange.post("/orange/send-from-phone", json={"from": APEJ, "text": f"OK {first_code}"})
    assert answer.status_code == 200 and answer.json()["status_code"] == 200, answer.text
    run_worker(database_url, at, orange)
    moved = [r for r in outbox(db) if r.id > before[-1].id]
    assert len(moved) > FAILURES
    assert {(r.status, r.route, r.attempts) for r in moved} == {(SmsStatus.ACCEPTED, "orange", 1)}
    by_orange = sent(orange, "orange")
    assert len(by_orange) == len(moved)  # none twice
    assert {r.gateway_id for r in moved} == {f"orange:{m['id']}" for m in by_orange}
    [at_state, orange_state] = health(redis)
    assert (at_state.health, at_state.sent, at_state.failed) == ("down", len(before) + FAILURES, FAILURES)
    assert (orange_state.health, orange_state.sent, orange_state.failed) == ("up", len(moved), 0)
    # Orange's delivery receipts land on the messages it took (AT's came before it died).
    wait_for(lambda: all(r.delivery_status == "Success" for r in outbox(db)), timeout=REPORTS_WAIT)

    # AT comes back; after the cool-down a send probes it, succeeds, and traffic returns to it.
    at = emulators["at"] = restart(at, logs)
    end_cooldown(redis, "at")
    answer = orange.post("/orange/send-from-phone", json={"from": SECOND, "text": "AIDE"})
    assert answer.status_code == 200 and answer.json()["status_code"] == 200, answer.text
    run_worker(database_url, at, orange)
    back = [r for r in outbox(db) if r.id > moved[-1].id]
    # The keyword came in by Orange, yet the help goes back by the returnee's operator's first route.
    assert len(back) == 1 and (back[0].status, back[0].route, back[0].to_e164) == (
        SmsStatus.ACCEPTED,
        "at",
        SECOND,
    )
    assert len(sent(orange, "orange")) == len(moved)  # nothing more by Orange
    assert health(redis)[0].health == "up" and not redis.exists(keys.route_failures("at"))

    # A provider's answer by AT's route acts on the referral just the same.
    at.post("/send-from-phone", data={"from": APEJ, "text": f"FINI {first_code}"})
    run_worker(database_url, at, orange)
    db.expire_all()
    assert db.scalar(select(Referral.status).where(Referral.code == first_code)) == "closed"
    wait_for(lambda: all(r.delivery_status == "Success" for r in outbox(db)), timeout=REPORTS_WAIT)


def health(redis: Redis) -> list:
    """The routes' states as the admin reads them."""
    from config import load_settings
    from gateway import router_from_settings

    router = router_from_settings(
        load_settings({"ORANGE_SENDER_ADDRESS": ORANGE_SENDER}, sms_routes="at=africastalking; orange=orange")
    )
    return router.health.states(redis, list(router.routes.values()))


def test_moov_numbers_take_their_own_first_route(
    db, at: EmulatorProcess, orange: EmulatorProcess, database_url: str, live_server
) -> None:
    moov = "+22366000201"
    ask_for_help(Phone(live_server.url, number=moov))
    run_worker(database_url, at, orange)
    rows = outbox(db)
    assert {r.route for r in rows if r.to_e164 == moov} == {"orange"}
    assert {r.route for r in rows if r.to_e164 == APEJ} == {"at"}
    assert {r.status for r in rows} == {SmsStatus.ACCEPTED}


def sweep(database_url: str, at: EmulatorProcess, orange: EmulatorProcess, after: timedelta) -> None:
    """The outbox sweep as the worker's cron runs it, at a clock `after` from now."""
    with Redis.from_url(REDIS_URL) as redis:
        Queue(queues.DEFAULT, connection=redis).enqueue(
            "workers.outbox.sweep_outbox", (utcnow() + after).isoformat()
        )
    run_worker(database_url, at, orange)


def copies(rows: list[OutboundSms], *faces: tuple[EmulatorProcess, str]) -> list[int]:
    """How many times each message reached a gateway, over every route."""
    texts = [(m["to"], m["text"]) for emulator, face in faces for m in sent(emulator, face)]
    return [texts.count((r.to_e164, r.body)) for r in rows]


def test_with_every_route_down_nothing_is_lost_and_each_message_leaves_once_a_route_returns(
    db, redis: Redis, at: EmulatorProcess, orange: EmulatorProcess, database_url: str, live_server, logs: Path,
    emulators: dict[str, EmulatorProcess], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    at.stop()
    orange.post("/faults", json={"fail_next": 1000})  # Orange answers 500 to every send
    ask_for_help(Phone(live_server.url, number=FIRST))
    with caplog.at_level(logging.INFO, logger="workers.sms"):
        run_worker(database_url, at, orange)  # the first try and RQ's three retries, every route failing
    waiting = outbox(db)
    assert waiting and {r.status for r in waiting} == {SmsStatus.PENDING}
    # Each failed send's log line names the route whose answer it kept (the worst one's).
    failures = [
        r.getMessage() for r in caplog.records if r.name == "workers.sms" and ": retry by " in r.getMessage()
    ]
    assert failures and all(line.split(" by ")[1].split()[0] in ("at", "orange") for line in failures), (
        failures
    )
    assert [(s.health, s.failed > 0) for s in health(redis)] == [("down", True), ("down", True)]
    assert sent(orange, "orange") == []

    at = emulators["at"] = restart(at, logs)
    end_cooldown(redis, "at")
    sweep(database_url, at, orange, after=timedelta(hours=1))  # the cron's sweep, once they are due
    done = outbox(db)
    assert {(r.status, r.route) for r in done} == {(SmsStatus.ACCEPTED, "at")}
    assert copies(done, (at, "at"), (orange, "orange")) == [1] * len(done)


def test_a_send_cut_off_after_its_route_took_it_is_sent_again_at_most_once_by_a_live_route(
    db, redis: Redis, at: EmulatorProcess, orange: EmulatorProcess, database_url: str, live_server
) -> None:
    """A worker that died between AT's acceptance and its commit leaves the row claimed (as
    tests/faults/test_worker_killed.py shows with kill -9); AT is dead by the time the claim lapses:
    the sweeper takes the row back and Orange sends it, a second copy at most."""
    ask_for_help(Phone(live_server.url, number=FIRST))
    run_worker(database_url, at, orange)
    [victim, *_] = outbox(db)
    db.execute(
        update(OutboundSms)
        .where(OutboundSms.id == victim.id)
        .values(status=SmsStatus.SENDING, claimed_at=utcnow(), gateway_id=None, route=None)
    )
    db.commit()  # what the dead worker left: AT has the message, the row does not know it
    at_copies = copies([victim], (at, "at"))
    at.stop()
    sweep(database_url, at, orange, after=timedelta(hours=1))  # the claim's lease has long lapsed
    again = next(r for r in outbox(db) if r.id == victim.id)
    assert (again.status, again.route) == (SmsStatus.ACCEPTED, "orange")
    assert at_copies == [1] and copies([again], (orange, "orange")) == [1]  # two copies in all: the promise
    sweep(database_url, at, orange, after=timedelta(hours=2))
    assert copies([again], (orange, "orange")) == [1]  # and no more


def test_a_number_with_one_route_is_sent_by_it_even_while_it_is_marked_down(
    db, redis: Redis, at: EmulatorProcess, orange: EmulatorProcess, database_url: str, live_server
) -> None:
    """With nowhere else to go, a message takes its one route whatever the route's health (the
    worker does not even ask it), and the success brings the route back up."""
    redis.set(keys.route_failures("at"), FAILURES)
    redis.set(keys.route_down("at"), "1", ex=600)
    ask_for_help(Phone(live_server.url, number=FIRST))
    run_worker(database_url, at, orange, prefixes="*=at")
    rows = outbox(db)
    assert rows and {(r.status, r.route, r.attempts) for r in rows} == {(SmsStatus.ACCEPTED, "at", 1)}
    assert copies(rows, (at, "at"), (orange, "orange")) == [1] * len(rows)
    assert health(redis)[0].health == "up" and not redis.exists(keys.route_down("at"))


def test_a_route_that_fails_its_health_check_is_skipped_before_any_message_tries_it(
    db, redis: Redis, at: EmulatorProcess, orange: EmulatorProcess, database_url: str, live_server
) -> None:
    at.stop()
    with Redis.from_url(REDIS_URL) as queue_redis:
        check = Queue(queues.DEFAULT, connection=queue_redis).enqueue("workers.routes.check_routes")
    run_worker(database_url, at, orange)  # the cron's health check, on a real worker
    assert check.latest_result().return_value == {"at": False, "orange": True}
    assert redis.exists(keys.route_down("at")) and not redis.exists(keys.route_down("orange"))

    ask_for_help(Phone(live_server.url, number=FIRST))
    run_worker(database_url, at, orange)
    rows = outbox(db)
    assert {(r.status, r.route, r.attempts) for r in rows} == {(SmsStatus.ACCEPTED, "orange", 1)}
    assert health(redis)[0].sent == 0  # no message waited on AT to find it dead
