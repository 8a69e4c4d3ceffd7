"""Referrals through a real Kannel: Debian's bearerbox and smsbox, with kannel-extras' fake SMSC.

The app is served over HTTP behind a callback secret; a real RQ worker sends through smsbox's
sendsms; the fake SMSC shows what reached the network; Kannel calls our dlr-url and get-url.
Without Kannel these tests are skipped, except under CI, where they fail (.ci/run installs it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select

from gateway import KannelGateway, Outcome, OutgoingSms
from infra import queues
from infra.queues import Outbox
from models import OutboundSms, Referral, SmsStatus
from models.phone import phone_hash
from tests.conftest import PHONE_HASH_KEY, Phone, app_settings, run_worker
from tests.gateway_helpers import fresh_number, wait_for
from tests.journeys import RETURNEE, app_with_directory, ask_for_help, code_in
from tests.kannel_helpers import PASSWORD, USERNAME, Kannel, Received, kannel_installed, start_kannel

SECRET = "kannel-e2e-callback-secret-0123456789"
SHORT_CODE = "36001"
APEJ = "+22370000002"  # jobs in Bamako, first choice in the sample directory


@pytest.fixture(scope="session")
def kannel_session(app_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kannel]:
    kannel_installed()
    get_url = f"http://127.0.0.1:{app_port}/{SECRET}/sms/kannel/incoming"
    started = start_kannel(tmp_path_factory.mktemp("kannel"), get_url)
    yield started
    started.stop()


@pytest.fixture
def kannel(kannel_session: Kannel) -> Kannel:
    """The session's Kannel, with any box the previous test's teardown crashed started again."""
    kannel_session.revive()
    return kannel_session


@pytest.fixture
def settings(database_url: str, kannel: Kannel, app_port: int) -> dict[str, object]:
    return app_settings(
        database_url, sms_gateway="kannel", kannel_sendsms_url=kannel.sendsms_url, kannel_username=USERNAME,
        kannel_password=PASSWORD, callback_secret=SECRET, public_base_url=f"http://127.0.0.1:{app_port}",
        sms_retry_intervals="0,0,0",
    )  # fmt: skip


@pytest.fixture
def app(settings: dict[str, object], redis: Redis) -> Flask:
    return app_with_directory(settings)


@pytest.fixture
def worker(settings: dict[str, object], database_url: str, monkeypatch: pytest.MonkeyPatch):
    """Run a real RQ worker (burst) whose gateway is Kannel, configured through its environment."""
    for name in ("sms_gateway", "kannel_sendsms_url", "kannel_username", "kannel_password", "callback_secret",
                 "public_base_url"):  # fmt: skip
        monkeypatch.setenv(name.upper(), str(settings[name]))
    return lambda: run_worker(database_url)


def mentioning(messages: list[Received], code: str) -> list[Received]:
    """The messages about one referral: the fake SMSC keeps every test's messages."""
    return [m for m in messages if code in m.text]


def rows(db, **where: object) -> list[OutboundSms]:
    db.expire_all()
    return list(db.scalars(select(OutboundSms).filter_by(**where).order_by(OutboundSms.id)))


def test_a_referral_reaches_the_network_through_kannel_and_its_delivery_report_comes_back(
    live_server, db, kannel: Kannel, worker
) -> None:
    code = code_in(ask_for_help(Phone(f"{live_server.url}/{SECRET}", number=RETURNEE)))
    worker()

    [alert] = wait_for(lambda: mentioning(kannel.received_by(APEJ), code), timeout=10)
    assert (alert.sender, alert.coding) == ("SIRA", "text")
    assert wait_for(lambda: mentioning(kannel.received_by(RETURNEE), code), timeout=10)
    [row] = rows(db, purpose="provider_alert")
    assert (row.status, row.gateway_status) == (SmsStatus.ACCEPTED, "Accepted") and row.gateway_id
    # Kannel calls our dlr-url: the fake SMSC acknowledges (8), then reports the delivery (1).
    assert wait_for(lambda: rows(db, id=row.id)[0].delivery_status == "Success", timeout=10)


def test_a_bambara_text_goes_out_as_ucs2(live_server, db, kannel: Kannel, worker, redis: Redis) -> None:
    number = fresh_number()
    code = uuid.uuid4().hex[:5].upper()
    text = f"I ni ce! I ka ɲɛnabɔ ka taa ɲɛ: {code}"
    row = OutboundSms(to_e164=number, to_hash=phone_hash(number, PHONE_HASH_KEY), sender="INFO", body=text,
                      purpose="test")  # fmt: skip
    db.add(row)
    db.commit()
    Outbox(redis, (0, 0, 0)).queue([row.id])
    worker()

    [received] = wait_for(lambda: mentioning(kannel.received_by(number), code), timeout=10)
    assert (received.coding, received.text, received.sender) == ("ucs-2", text, "INFO")
    assert wait_for(lambda: rows(db, id=row.id)[0].delivery_status == "Success", timeout=10)


def test_a_providers_ok_from_a_phone_accepts_the_referral(live_server, db, kannel: Kannel, worker) -> None:
    code = code_in(ask_for_help(Phone(f"{live_server.url}/{SECRET}", number=RETURNEE)))
    worker()

    kannel.inject(APEJ, SHORT_CODE, f"OK {code}")

    def accepted() -> bool:
        db.expire_all()
        return db.scalar(select(Referral.status).where(Referral.code == code)) == "accepted"

    assert wait_for(accepted, timeout=10)
    worker()  # the disclosure to the provider goes out through Kannel too
    assert wait_for(lambda: mentioning(mentioning(kannel.received_by(APEJ), code), RETURNEE), timeout=10)


def test_kannel_down_the_send_is_retried_and_leaves_once_it_is_back(
    live_server, db, kannel: Kannel, worker, redis: Redis
) -> None:
    kannel.stop_process("smsbox")
    try:
        code = code_in(ask_for_help(Phone(f"{live_server.url}/{SECRET}", number=RETURNEE)))
        worker()
        [row] = rows(db, purpose="provider_alert")
        assert row.status == SmsStatus.PENDING and row.attempts >= 1
        assert row.last_error.startswith("cannot reach") and row.gateway_id is None
        assert not mentioning(kannel.received_by(APEJ), code)
    finally:
        kannel.start("smsbox")

    Queue(queues.DEFAULT, connection=redis).enqueue("workers.outbox.sweep_outbox")
    worker()  # the sweeper queues what is due, and the same burst sends it

    [row] = rows(db, purpose="provider_alert")
    assert wait_for(lambda: mentioning(kannel.received_by(APEJ), code), timeout=10)
    assert row.status == SmsStatus.ACCEPTED


def test_kannels_own_answers_map_to_our_outcomes(kannel: Kannel) -> None:
    """Wrong credentials hold the message; with no SMSC bound Kannel queues it and sends it later."""
    number, code = fresh_number(), uuid.uuid4().hex[:5].upper()
    dlr_url = "http://127.0.0.1:9/unused"
    wrong = KannelGateway(kannel.sendsms_url, USERNAME, "not-the-password", dlr_url, timeout_seconds=2)
    held = wrong.send(OutgoingSms(number, "x", "SIRA"))
    assert (held.outcome, held.status) == (Outcome.HELD, "HTTP 403")

    gateway = KannelGateway(kannel.sendsms_url, USERNAME, PASSWORD, dlr_url, timeout_seconds=2)
    kannel.stop_process("fakesmsc")
    try:
        queued = gateway.send(OutgoingSms(number, f"Sira {code}", "SIRA"))
    finally:
        kannel.start("fakesmsc")
    assert (queued.outcome, queued.status) == (Outcome.ACCEPTED, "Queued")
    assert wait_for(lambda: mentioning(kannel.received_by(number), code), timeout=10)
