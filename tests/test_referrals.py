"""A registered returnee asks for help by USSD; the right provider and the returnee get their SMS.

End to end: the webhook over HTTP, a real RQ worker process on real Redis, the Africa's Talking
emulator as its own process, delivery reports posted back to the webhook.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from app import create_app
from infra import queues
from models import OutboundSms, Provider, Referral, Returnee, SmsStatus
from tests.conftest import Phone, redis_dump
from tests.gateway_helpers import EmulatorProcess, wait_for
from tests.journeys import RETURNEE, ask_for_help, code_in, messages, run_worker, seeded_app, settings_for
from web.context import sira


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


def test_help_request_reaches_the_provider_and_the_returnee_by_sms(
    live_server, db, gateway: EmulatorProcess, database_url: str
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    reply = ask_for_help(phone)
    assert reply.startswith("END ") and "Vous recevrez un SMS" in reply
    code = code_in(reply)
    referral = db.scalar(select(Referral))
    assert referral.code == code and referral.status == "sent" and referral.category == "jobs"
    provider = db.get(Provider, referral.provider_id)
    assert provider.slug == "apej"  # jobs in Bamako: the local provider, not the national one

    run_worker(database_url, gateway)

    sent = messages(gateway)
    to_provider = [m for m in sent if m["to"] == "+22370000002"]
    to_returnee = [m for m in sent if m["to"] == RETURNEE]
    assert len(to_provider) == 1 and len(to_returnee) == 1
    alert = to_provider[0]["text"]
    assert code in alert and "emploi" in alert and "District de Bamako" in alert and f"OK {code}" in alert
    for secret in ("Awa", RETURNEE, "70000101", "migrant"):
        assert secret not in alert
    assert code in to_returnee[0]["text"] and to_returnee[0]["from"] == "INFO"
    assert "emploi" not in to_returnee[0]["text"]

    def delivered() -> bool:
        db.expire_all()
        rows = db.scalars(select(OutboundSms)).all()
        return len(rows) == 2 and all(r.delivery_status == "Success" for r in rows)

    wait_for(delivered, timeout=10)
    rows = db.scalars(select(OutboundSms)).all()
    assert all(r.status == SmsStatus.ACCEPTED and r.gateway_id and r.segments == 1 and r.cost for r in rows)


@pytest.mark.parametrize(
    ("age", "region", "category", "expected"),
    [
        ("1", ("4",), "1", "protection-enfance-sikasso"),  # a minor asking for a job: child protection
        ("3", ("9",), "1", "anpe"),  # jobs in Kidal: no local provider, the least loaded national one
        (
            "3",
            ("98", "12"),
            "1",
            "apej",
        ),  # Nioro (page 2) was cut from Kayes: Kayes's coverage still serves it
    ],
    ids=["minor", "national-fallback", "parent-region"],
)
def test_matching(live_server, db, age: str, region: tuple[str, ...], category: str, expected: str) -> None:
    reply = ask_for_help(Phone(live_server.url, number=RETURNEE), age=age, region=region, category=category)
    referral = db.scalar(select(Referral).where(Referral.code == code_in(reply)))
    assert db.get(Provider, referral.provider_id).slug == expected


def test_no_provider_at_all_goes_to_the_coordination_desk(live_server, db) -> None:
    reply = ask_for_help(
        Phone(live_server.url, number=RETURNEE), region=("9",), category="3"
    )  # health in Kidal
    referral = db.scalar(select(Referral))
    assert referral.code == code_in(reply) and referral.at_desk and referral.status == "new"
    [told] = db.scalars(select(OutboundSms)).all()  # one SMS, that says what happens now
    assert told.purpose == "returnee_desk" and "coordinateur" in told.body


def test_least_loaded_provider_relative_to_capacity_gets_the_next_referral(live_server, db) -> None:
    for i in range(3):
        ask_for_help(Phone(live_server.url, number=f"+2237000020{i}"), region=("9",))  # jobs, national
    slugs = [db.get(Provider, r.provider_id).slug for r in db.scalars(select(Referral).order_by(Referral.id))]
    assert slugs == ["anpe", "fafpa", "anpe"]  # capacity 30 vs 15: after one each, ANPE is less loaded


def test_asking_again_for_the_same_open_need_returns_the_same_referral(live_server, db) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    first = code_in(ask_for_help(phone))
    phone.dial()
    for answer in ("1", "1"):
        phone.send(answer)
    again = phone.send("1")
    assert first in again
    assert db.scalar(select(func.count()).select_from(Referral)) == 1


def test_a_repeated_confirmation_never_creates_two_referrals(live_server, db) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    reply = ask_for_help(phone)
    assert phone.repeat() == reply and phone.repeat() == reply
    assert db.scalar(select(func.count()).select_from(Referral)) == 1
    assert db.scalar(select(func.count()).select_from(OutboundSms)) == 2


def test_my_requests_lists_each_referral_with_its_status(live_server) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    code = code_in(ask_for_help(phone))
    phone.dial()
    listing = phone.send("2")
    assert "Mes demandes (1)" in listing and f"1 {code} envoyee" in listing
    assert f"Demande {code} : emploi." in phone.send("1")  # the neutral label, as in SMS


def test_my_requests_never_shows_a_sensitive_need_on_the_screen(live_server) -> None:
    """Health and psychosocial needs read "accompagnement", as in SMS: the phone may be shared."""
    phone = Phone(live_server.url, number=RETURNEE)
    code = code_in(ask_for_help(phone, category="4"))  # psychosocial support
    phone.dial()
    phone.send("2")
    detail = phone.send("1")
    assert f"Demande {code} : accompagnement." in detail and "psycho" not in detail.lower()


def test_redis_down_when_the_referral_is_made_the_sms_goes_out_once_redis_is_back(
    database_url: str, redis: Redis, gateway: EmulatorProcess, app: Flask, app_port: int
) -> None:
    from tests.conftest import LiveServer

    broken = create_app(settings_for(database_url, gateway, redis_url="redis://127.0.0.1:1/0"))
    with LiveServer(broken, app_port) as server:
        reply = ask_for_help(Phone(server.url, number=RETURNEE))
    assert reply.startswith("END ") and "SMS" in reply
    with sira(app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(Referral)) == 1
        assert {r.status for r in session.scalars(select(OutboundSms))} == {SmsStatus.PENDING}
    assert Queue(queues.SMS, connection=redis).count == 0  # nothing could be queued

    a_minute_later = (datetime.now(UTC) + timedelta(seconds=61)).isoformat()
    Queue(queues.DEFAULT, connection=redis).enqueue(
        "workers.outbox.sweep_outbox", a_minute_later
    )  # the cron's
    with LiveServer(app, app_port):
        run_worker(database_url, gateway)
    sent = messages(gateway)
    assert sorted(m["to"] for m in sent) == ["+22370000002", RETURNEE]


def test_gateway_failing_the_first_tries_sends_each_message_once(
    live_server, db, gateway: EmulatorProcess, database_url: str
) -> None:
    gateway.post("/faults", json={"fail_next": 3})
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    run_worker(database_url, gateway)
    sent = messages(gateway)
    assert sorted(m["to"] for m in sent) == ["+22370000002", RETURNEE]
    rows = db.scalars(select(OutboundSms)).all()
    assert sum(r.attempts for r in rows) == 5 and all(r.status == SmsStatus.ACCEPTED for r in rows)


def test_a_message_refused_for_good_is_failed_visibly_and_not_retried(
    live_server, db, gateway: EmulatorProcess, database_url: str
) -> None:
    gateway.post("/faults", json={"reject_rate": 1, "reject_status": "UserInBlacklist"})
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    run_worker(database_url, gateway)
    rows = db.scalars(select(OutboundSms)).all()
    assert all(r.status == SmsStatus.FAILED and r.attempts == 1 and r.last_error for r in rows)


def test_jobs_carry_ids_only_and_redis_never_holds_a_phone_number(
    live_server, redis: Redis, gateway: EmulatorProcess, database_url: str
) -> None:
    gateway.post("/faults", json={"reject_rate": 1, "reject_status": "InvalidPhoneNumber"})
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    jobs = Queue(queues.SMS, connection=redis).get_jobs()
    assert jobs and all(job.args and all(isinstance(a, int) for a in job.args) for job in jobs)
    run_worker(database_url, gateway)
    blob = redis_dump(redis)
    for secret in (b"70000101", b"Awa", b"70000002"):
        assert secret not in blob


def test_send_job_is_idempotent_once_the_gateway_accepted(
    live_server, db, redis: Redis, gateway: EmulatorProcess, database_url: str
) -> None:
    ask_for_help(Phone(live_server.url, number=RETURNEE))
    run_worker(database_url, gateway)
    ids = [r.id for r in db.scalars(select(OutboundSms))]
    from infra.queues import Outbox

    Outbox(redis, (0,)).queue(ids)  # a stray duplicate job for every message
    run_worker(database_url, gateway)
    assert len(messages(gateway)) == 2


def test_consent_withdrawn_mid_session_refers_nothing_and_says_so_in_the_returnees_language(
    live_server, db
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    for answer in ("3", "1", "Awa", "2", "3", "1", "1", "1", "1"):  # English; register on the way to help
        phone.send(answer)
    phone.send("1")  # jobs: now on the confirmation screen
    returnee = db.scalar(select(Returnee))
    returnee.consent_version = None  # withdrawn meanwhile (another channel)
    db.commit()
    reply = phone.send("1")
    assert reply.startswith("END ") and "Please register first" in reply
    assert db.scalar(select(func.count()).select_from(Referral)) == 0


def test_refusing_consent_when_registering_again_asks_first_if_requests_are_open(live_server, db) -> None:
    """Refusing is withdrawing: like "My data > Withdraw", it says what it cancels before doing it."""
    phone = Phone(live_server.url, number=RETURNEE)
    code = code_in(ask_for_help(phone))
    phone.dial()
    for answer in ("3", "Awa", "2", "3", "1", "1", "1"):  # Register again, up to the consent question
        consent = phone.send(answer)
    assert "D'accord" in consent
    assert "annulera vos demandes en cours" in phone.send("2")
    assert "D'accord" in phone.send("2")  # no: back to the question, nothing changed
    assert db.scalar(select(Referral).where(Referral.code == code)).status == "sent"
    phone.send("2")
    assert phone.send("1").startswith("END ")  # yes, refuse: now it is withdrawn
    db.expire_all()
    assert db.scalar(select(Referral).where(Referral.code == code)).status == "cancelled"
