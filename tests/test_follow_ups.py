"""Follow-ups of outcomes, from the outside: a referral closed by its provider's SMS, the clock
moved past FOLLOW_UP_DAYS, the worker's cron job asking the returnee by SMS (seen at the emulator),
the returnee answering by SMS through the webhook, and what the dashboard, its CSV and the next
USSD dial make of the answer.

The clock is controlled as the deadline tests control it: the cron's job takes `now`.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra import queues
from models import FollowUp, Referral, ReferralEvent
from models.admin import Role
from models.base import as_utc
from models.db import insert_ignore
from models.follow_up import FollowUpStatus
from tests.conftest import ROOT, Phone, worker_environ
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, ask_for_help, code_in, inbox, run_worker, seeded_app, send_from_phone
from tests.test_admin_referrals import signed_in
from tests.test_metrics import scrape, value

APEJ = "+22370000002"  # jobs in Bamako, first choice
QUESTION = "Etes-vous toujours aide"  # the follow-up, in French, folded as the emulator's inbox shows it


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.fixture
def closed(live_server, db: Session, gateway: EmulatorProcess, database_url: str) -> str:
    """A returnee in Bamako asked for a job; APEJ accepted, served and closed it by SMS."""
    code = code_in(ask_for_help(Phone(live_server.url, number=RETURNEE)))
    run_worker(database_url, gateway)
    for text in (f"OK {code}", f"FINI {code}"):
        sms(gateway, database_url, APEJ, text)
    gateway.post("/reset")
    return code


def sms(gateway: EmulatorProcess, database_url: str, number: str, text: str) -> None:
    send_from_phone(gateway, number, text)
    run_worker(database_url, gateway)


def closed_at(db: Session, code: str) -> datetime:
    db.expire_all()
    return as_utc(
        db.scalar(
            select(ReferralEvent.at)
            .join(Referral, Referral.id == ReferralEvent.referral_id)
            .where(Referral.code == code, ReferralEvent.to_status == "closed")
        )
    )


def cron(redis: Redis, database_url: str, gateway: EmulatorProcess, moment: datetime) -> dict[str, int]:
    """The worker's cron job at a controlled time, run by a real worker."""
    job = Queue(queues.DEFAULT, connection=redis).enqueue(
        "workers.follow_ups.check_follow_ups", moment.isoformat()
    )
    run_worker(database_url, gateway)
    job.refresh()
    return job.return_value()


def questions(gateway: EmulatorProcess) -> list[str]:
    return [t for t in inbox(gateway, RETURNEE) if QUESTION in t]


def follow_ups(db: Session) -> list[FollowUp]:
    db.expire_all()
    return list(db.scalars(select(FollowUp).order_by(FollowUp.id)))


def figures(client: FlaskClient) -> dict[tuple[str, str], str]:
    response = client.get("/admin/dashboard.csv")
    assert response.status_code == 200, response.text
    return {(f, k): v for f, k, v in list(csv.reader(io.StringIO(response.text)))[1:]}


def test_a_follow_up_answered_by_sms_moves_the_dashboards_outcome_figures(
    app: Flask, db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, closed: str
) -> None:
    coordinator = signed_in(app, db, Role.COORDINATOR)
    assert not [k for k in figures(coordinator) if k[0].startswith("follow_up")]
    day = closed_at(db, closed)
    assert cron(redis, database_url, gateway, day + timedelta(days=29)) == {"asked": 0, "no_answer": 0}
    assert questions(gateway) == []
    assert cron(redis, database_url, gateway, day + timedelta(days=30, minutes=1))["asked"] == 1
    [question] = questions(gateway)
    assert closed in question and "Repondez 1 oui, 2 non, 3" in question
    assert "APEJ" not in question and "emploi" not in question.lower()  # nothing a relative should not read
    # the next tick asks nothing again
    cron(redis, database_url, gateway, day + timedelta(days=30, minutes=2))
    assert len(questions(gateway)) == 1
    page = coordinator.get("/admin/dashboard")
    assert "Résultats du suivi par besoin" in page.text and "en attente de réponse" in page.text

    sms(gateway, database_url, RETURNEE, "1")
    assert "Merci" in inbox(gateway, RETURNEE)[-1]
    assert [f.status for f in follow_ups(db)] == ["served"]
    got = figures(coordinator)
    provider_id = db.scalar(select(Referral.provider_id).where(Referral.code == closed))
    assert got[("follow_up_need", "jobs:served")] == "1" and got[("follow_up_need", "jobs:pending")] == "0"
    assert got[("follow_up_rate_need", "jobs:served")] == "1.0000"
    assert got[("follow_up_region", "bamako:served")] == "1"
    assert got[("follow_up_provider", f"{provider_id}:served")] == "1"
    assert got[("follow_up_rate_provider", f"{provider_id}:no_answer")] == "0.0000"
    page = coordinator.get("/admin/dashboard")
    row = page.text.split("Résultats du suivi par besoin", 1)[1].split("</table>", 1)[0]
    assert "Emplois et formations" in row or "Emploi" in row
    assert "1 (100 %)" in row and "toujours servi" in row


@pytest.mark.parametrize(("answer", "outcome"), [("2", "not_served"), ("3", "needs_more")])
def test_not_served_or_something_else_offers_a_new_request_on_the_next_dial_and_flags_the_referral(
    app: Flask, db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, live_server,
    closed: str, answer: str, outcome: str,
) -> None:  # fmt: skip
    phone = Phone(live_server.url, number=RETURNEE)
    assert "autre aide" not in phone.dial()  # before any follow-up, the menu is as it was
    cron(redis, database_url, gateway, closed_at(db, closed) + timedelta(days=30, minutes=1))
    sms(gateway, database_url, RETURNEE, answer)
    reply = inbox(gateway, RETURNEE)[-1]
    assert ("nouvelle demande" in reply) if outcome == "needs_more" else ("coordinateur" in reply)
    assert [f.status for f in follow_ups(db)] == [outcome]
    db.expire_all()
    assert db.scalar(select(Referral.flagged_at).where(Referral.code == closed)) is not None
    coordinator = signed_in(app, db, Role.COORDINATOR)
    waiting = coordinator.get("/admin/referrals?overdue=1").text  # the header's "to handle" link
    flagged = {"not_served": "ne pas être servie", "needs_more": "avoir besoin d&#39;autre chose"}[outcome]
    assert closed in waiting and f"la personne a dit {flagged}" in waiting and "À traiter : 1<" in waiting
    detail = coordinator.get(f"/admin/referrals/{closed}").text
    said = {"not_served": "non servi", "needs_more": "a besoin d&#39;autre chose"}[outcome]
    assert "posée 30 jours après la clôture" in detail and said in detail
    assert f"lors d&#39;un suivi, la personne a dit {flagged}" in detail  # why it is flagged, in words

    phone = Phone(live_server.url, number=RETURNEE)
    menu = phone.dial()
    assert menu.splitlines()[1].startswith("1 Vous avez demande une autre aide"), menu
    needs = phone.send("1")
    assert "autre aide avez-vous besoin" in needs
    confirm = phone.send("2")
    assert "Envoyer" in confirm, (needs, confirm)
    sent = phone.send("1")
    new_code = code_in(sent)
    assert new_code != closed
    assert db.scalar(select(func.count(Referral.id)).where(Referral.code == new_code)) == 1
    assert "autre aide" not in Phone(live_server.url, number=RETURNEE).dial()  # the offer was taken
    # the SMS said a coordinator would contact them: the new request does not take that away
    waiting = coordinator.get("/admin/referrals?overdue=1").text
    assert closed in waiting and "À traiter : 1<" in waiting


@pytest.mark.parametrize("text", ["5", "peut-etre", "1 2"])
def test_a_bad_answer_gets_the_follow_ups_help_and_changes_nothing(
    db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, closed: str, text: str
) -> None:
    cron(redis, database_url, gateway, closed_at(db, closed) + timedelta(days=30, minutes=1))
    sms(gateway, database_url, RETURNEE, text)
    help_ = inbox(gateway, RETURNEE)[-1]
    assert closed in help_ and "repondez 1 si vous etes toujours aide" in help_.lower()
    assert [f.status for f in follow_ups(db)] == ["pending"]
    sms(gateway, database_url, RETURNEE, "1")  # and the right answer still counts
    assert [f.status for f in follow_ups(db)] == ["served"]


def test_no_follow_up_after_stop(
    db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, closed: str
) -> None:
    sms(gateway, database_url, RETURNEE, "STOP")
    day = closed_at(db, closed)
    for days in (30, 90):
        assert cron(redis, database_url, gateway, day + timedelta(days=days, minutes=1))["asked"] == 0
    assert questions(gateway) == [] and follow_ups(db) == []


def test_no_follow_up_after_consent_is_withdrawn(
    db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, live_server, closed: str
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    phone.send("5")  # my data
    phone.send("1")  # withdraw consent
    assert "retire" in phone.send("1")
    assert (
        cron(redis, database_url, gateway, closed_at(db, closed) + timedelta(days=30, minutes=1))["asked"]
        == 0
    )
    assert questions(gateway) == [] and follow_ups(db) == []


def test_erasure_removes_the_follow_ups_and_none_is_asked_after_it(
    db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, closed: str
) -> None:
    day = closed_at(db, closed)
    cron(redis, database_url, gateway, day + timedelta(days=30, minutes=1))
    assert len(follow_ups(db)) == 1
    sms(gateway, database_url, RETURNEE, "SUPPRIMER")
    pin = next(w for w in inbox(gateway, RETURNEE)[-1].split() if w.isdigit() and len(w) == 6)
    sms(gateway, database_url, RETURNEE, f"SUPPRIMER {pin}")
    assert "effacees" in inbox(gateway, RETURNEE)[-1]
    assert follow_ups(db) == []
    gateway.post("/reset")
    assert cron(redis, database_url, gateway, day + timedelta(days=90, minutes=1))["asked"] == 0
    assert inbox(gateway, RETURNEE) == []


def test_erasure_keeps_an_answered_follow_up_in_the_figures_without_the_person(
    db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, closed: str
) -> None:
    day = closed_at(db, closed)
    cron(redis, database_url, gateway, day + timedelta(days=30, minutes=1))
    sms(gateway, database_url, RETURNEE, "1")
    sms(gateway, database_url, RETURNEE, "SUPPRIMER")
    pin = next(w for w in inbox(gateway, RETURNEE)[-1].split() if w.isdigit() and len(w) == 6)
    sms(gateway, database_url, RETURNEE, f"SUPPRIMER {pin}")
    assert "effacees" in inbox(gateway, RETURNEE)[-1]
    db.expire_all()
    assert [(f.status, f.returnee_id) for f in follow_ups(db)] == [("served", None)]


def test_a_follow_up_without_answer_is_closed_as_no_answer_after_the_set_time(
    app: Flask,
    db: Session,
    redis: Redis,
    gateway: EmulatorProcess,
    database_url: str,
    live_server,
    closed: str,
) -> None:
    before = scrape(live_server)
    asked = closed_at(db, closed) + timedelta(days=30, minutes=1)
    cron(redis, database_url, gateway, asked)
    assert cron(redis, database_url, gateway, asked + timedelta(days=7, minutes=-1))["no_answer"] == 0
    assert [f.status for f in follow_ups(db)] == ["pending"]
    assert cron(redis, database_url, gateway, asked + timedelta(days=7))["no_answer"] == 1
    assert [f.status for f in follow_ups(db)] == ["no_answer"]
    after = scrape(live_server)  # and /metrics counts both actions
    for action in ("asked", "no_answer"):
        name = "sira_follow_up_actions_total"
        assert value(after, name, action=action) - value(before, name, action=action) == 1
    got = figures(signed_in(app, db, Role.VIEWER))
    assert (
        got[("follow_up_need", "jobs:no_answer")] == "1"
        and got[("follow_up_rate_need", "jobs:no_answer")] == "1.0000"
    )


@pytest.mark.process
def test_two_workers_running_the_cron_at_once_send_one_question(
    db: Session, redis: Redis, gateway: EmulatorProcess, database_url: str, closed: str
) -> None:
    """Each worker's cron queues its own run; two worker processes take them at the same time."""
    moment = (closed_at(db, closed) + timedelta(days=30, minutes=1)).isoformat()
    queue = Queue(queues.DEFAULT, connection=redis)
    jobs = [queue.enqueue("workers.follow_ups.check_follow_ups", moment) for _ in range(2)]
    env = {**os.environ, **worker_environ(database_url, gateway.url)}
    command = [sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"]
    workers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err[-2000:]
    for job in jobs:
        job.refresh()
    assert sorted(job.return_value()["asked"] for job in jobs) == [0, 1]
    assert len(questions(gateway)) == 1 and len(follow_ups(db)) == 1
    # The workers above may have run one after the other; the guard itself, when both found the
    # question due at once: the second claim of the same referral and day is refused by the database.
    (asked,) = follow_ups(db)
    again = insert_ignore(db, FollowUp, referral_id=asked.referral_id, returnee_id=asked.returnee_id,
                          day=asked.day, status=FollowUpStatus.PENDING, sent_at=asked.sent_at)  # fmt: skip
    assert again is None and len(follow_ups(db)) == 1
