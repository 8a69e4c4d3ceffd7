"""A Kannel route beside an Africa's Talking route: Moov numbers (6x) go by a real Kannel (Debian's
bearerbox and smsbox, kannel-extras' fake SMSC) first, Orange numbers (7x) by the AT emulator.
Stopping smsbox moves Moov's messages to AT; starting it again brings them back. A provider's
answer brought in by Kannel acts on its referral, and the reply goes by the provider's own route.
Without Kannel these tests are skipped, except under CI (see tests/kannel_helpers.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import select

from infra import keys
from models import OutboundSms, Referral, SmsStatus
from tests.conftest import Phone, app_settings, run_worker
from tests.gateway_helpers import EmulatorProcess, end_cooldown, wait_for
from tests.journeys import app_with_directory, ask_for_help, code_in
from tests.kannel_helpers import PASSWORD, USERNAME, Kannel, kannel_installed, start_kannel

APEJ = "+22370000002"  # jobs in Bamako, first choice; on Orange
SHORT_CODE = "36001"
PREFIXES = "6 89 95-99=kannel,at; *=at,kannel"
COOLDOWN = 3600  # never ends on its own during the test: it ends it (end_cooldown)


@pytest.fixture(scope="module")
def kannel_module(app_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    kannel_installed()
    started = start_kannel(
        tmp_path_factory.mktemp("kannel-route"), f"http://127.0.0.1:{app_port}/sms/kannel/incoming"
    )
    yield started
    started.stop()


@pytest.fixture
def kannel(kannel_module: Kannel) -> Kannel:
    kannel_module.revive()
    return kannel_module


@pytest.fixture
def settings(database_url: str, kannel: Kannel, gateway: EmulatorProcess, app_port: int) -> dict[str, object]:
    routes = (f"kannel=kannel?sendsms_url={kannel.sendsms_url}&username={USERNAME}&password={PASSWORD};"
              f" at=africastalking?api_url={gateway.url}")  # fmt: skip
    return app_settings(database_url, sms_routes=routes, sms_route_prefixes=PREFIXES, sms_route_failures=1,
                        sms_route_cooldown_seconds=COOLDOWN, public_base_url=f"http://127.0.0.1:{app_port}",
                        sms_retry_intervals="0,0,0", redis_socket_timeout_seconds=10)  # fmt: skip


@pytest.fixture
def app(settings: dict[str, object], redis: Redis) -> Flask:
    return app_with_directory(settings)


@pytest.fixture
def worker(
    settings: dict[str, object], database_url: str, gateway: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
):
    """A real RQ worker (burst), its routes given through the environment as in production."""
    for name in ("sms_routes", "sms_route_prefixes", "sms_route_failures", "sms_route_cooldown_seconds",
                 "public_base_url"):  # fmt: skip
        monkeypatch.setenv(name.upper(), str(settings[name]))
    return lambda: run_worker(database_url, gateway.url)


def outbox(db) -> list[OutboundSms]:
    db.expire_all()
    return list(db.scalars(select(OutboundSms).order_by(OutboundSms.id)))


def test_moov_numbers_go_by_kannel_fall_back_on_at_while_it_is_down_and_come_back(
    live_server, db, kannel: Kannel, gateway: EmulatorProcess, worker, redis: Redis
) -> None:
    moov = "+22366000301"
    code = code_in(ask_for_help(Phone(live_server.url, number=moov)))
    worker()
    rows = outbox(db)
    assert {(r.to_e164, r.route) for r in rows} == {(moov, "kannel"), (APEJ, "at")}
    assert wait_for(lambda: [m for m in kannel.received_by(moov) if code in m.text], timeout=60)
    # Kannel's delivery report lands on the message it took; AT's on its own.
    wait_for(lambda: all(r.delivery_status == "Success" for r in outbox(db)), timeout=60)

    # smsbox stops: the next Moov message leaves by AT at its first attempt, once.
    kannel.stop_process("smsbox")
    second = "+22366000302"
    ask_for_help(Phone(live_server.url, number=second))
    worker()
    [moved] = [r for r in outbox(db) if r.to_e164 == second]
    assert (moved.status, moved.route, moved.attempts) == (SmsStatus.ACCEPTED, "at", 1)
    assert len(gateway.messages_to(second)) == 1 and redis.exists(keys.route_down("kannel"))

    # smsbox is back; after the cool-down the provider's answer, brought in by Kannel, accepts the
    # referral; the returnee's news goes by Kannel again, the provider's by its own route, AT.
    kannel.start("smsbox")
    end_cooldown(redis, "kannel")
    before = outbox(db)[-1].id
    kannel.inject(APEJ, SHORT_CODE, f"OK {code}")

    def accepted() -> bool:
        db.expire_all()
        return db.scalar(select(Referral.status).where(Referral.code == code)) == "accepted"

    wait_for(accepted, timeout=60)
    worker()
    after = [r for r in outbox(db) if r.id > before]
    assert after and all(r.status == SmsStatus.ACCEPTED for r in after)
    assert {r.route for r in after if r.to_e164 == APEJ} == {"at"}
    assert {r.route for r in after if r.to_e164 == moov} == {"kannel"}
    assert not redis.exists(keys.route_down("kannel"), keys.route_failures("kannel"))
