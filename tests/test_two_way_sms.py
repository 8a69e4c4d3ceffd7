"""Providers answer by SMS and referrals live their whole life without a browser.

Each test makes a referral through the USSD webhook, runs a real worker, then has people send
SMS through the emulator, which posts them to `/sms/incoming` as Africa's Talking would.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import select

from infra import queues
from models import InboundSms, OutboundSms, Referral, ReferralEvent, Returnee, UssdSession, UssdStep
from tests.conftest import Phone, flush_transcripts
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import (
    RETURNEE,
    inbox,
    referred_for_a_job,
    run_worker,
    seeded_app,
    text_service,
)

APEJ = "+22370000002"  # jobs in Bamako, first choice
ASSOCIATION = "+22350000011"  # jobs in Bamako, second choice
ANPE, FAFPA = "+22370000001", "+22366000003"  # national employment providers


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


@pytest.fixture
def referral_code(live_server, gateway: EmulatorProcess, database_url: str) -> str:
    return referred_for_a_job(live_server.url, gateway, database_url)


def referral(db, code: str) -> Referral:
    db.expire_all()
    return db.scalar(select(Referral).where(Referral.code == code))


def test_provider_accepts_and_only_then_learns_who_to_call(db, gateway, database_url, referral_code) -> None:
    text_service(gateway, database_url, APEJ, f"ok {referral_code.lower()}")
    assert referral(db, referral_code).status == "accepted"
    [to_provider] = inbox(gateway, APEJ)
    assert "Awa" in to_provider and "+22370000101" in to_provider and f"FINI {referral_code}" in to_provider
    [to_returnee] = inbox(gateway, RETURNEE)
    assert referral_code in to_returnee and "accept" in to_returnee
    assert "APEJ" not in to_returnee  # a provider's name can tell a relative what the need is
    events = referral(db, referral_code).events
    assert [(e.to_status, e.channel) for e in events][-1] == ("accepted", "sms")
    assert events[-1].actor.startswith("provider:")


def test_decline_reroutes_to_the_next_provider_without_telling_the_returnee(
    db, gateway, database_url, referral_code
) -> None:
    text_service(gateway, database_url, APEJ, f"NON {referral_code} plus de place ce mois")
    current = referral(db, referral_code)
    assert current.status == "sent"
    assert any(e.to_status == "declined" and e.note == "plus de place ce mois" for e in current.events)
    assert referral_code in inbox(gateway, ASSOCIATION)[0]
    assert "refus" in inbox(gateway, APEJ)[0].lower()
    assert inbox(gateway, RETURNEE) == []


def test_when_no_provider_is_left_the_desk_takes_it_and_the_returnee_is_told(
    db, gateway, database_url, referral_code
) -> None:
    for number in (APEJ, ASSOCIATION, ANPE, FAFPA):  # the local ones, then the national ones
        assert not inbox(gateway, RETURNEE)
        text_service(gateway, database_url, number, f"REFUS {referral_code}")
    current = referral(db, referral_code)
    assert current.provider_id is None and current.flagged_at is not None and current.status == "declined"
    assert "coordinateur" in inbox(gateway, RETURNEE)[0]


def test_a_declining_provider_is_never_asked_again(db, gateway, database_url, referral_code) -> None:
    text_service(gateway, database_url, APEJ, f"NON {referral_code}")
    text_service(gateway, database_url, APEJ, f"OK {referral_code}")
    assert referral(db, referral_code).status == "sent"
    assert "pas confiee" in inbox(gateway, APEJ)[-1]


@pytest.mark.parametrize(("answer", "feedback"), [("1", "served"), ("Oui", "served"), ("ɔwɔ", "served"),
                                                  ("2", "not_served"), ("non", "not_served"), ("Ayi", "not_served")])  # fmt: skip
def test_close_asks_for_feedback_and_stores_the_answer(
    db, gateway, database_url, referral_code, answer: str, feedback: str
) -> None:
    text_service(gateway, database_url, APEJ, f"OK {referral_code}")
    text_service(gateway, database_url, APEJ, f"fini {referral_code}")
    assert referral(db, referral_code).status == "closed"
    assert "Repondez 1" in inbox(gateway, RETURNEE)[-1].replace("é", "e")
    text_service(gateway, database_url, RETURNEE, answer)  # a returnee says yes or no as people do
    assert referral(db, referral_code).feedback == feedback
    answered = inbox(gateway, RETURNEE)[-1]
    assert ("Merci" in answered) if feedback == "served" else ("coordinateur va examiner" in answered)


@pytest.mark.parametrize(
    ("steps", "answer"),
    [
        (["OK", "OK"], "acceptee ; votre reponse ne change rien"),  # accepting twice
        (["FINI"], "envoyee ; votre reponse ne change rien"),  # closing before accepting
    ],
)
def test_illegal_transitions_are_refused_with_a_reason(
    db, gateway, database_url, referral_code, steps, answer
) -> None:
    for step in steps:
        text_service(gateway, database_url, APEJ, f"{step} {referral_code}")
    status = referral(db, referral_code).status
    assert status == ("accepted" if steps[0] == "OK" else "sent")
    assert answer in inbox(gateway, APEJ)[-1].replace("é", "e").replace("è", "e")


def test_a_provider_cannot_touch_another_providers_referral(db, gateway, database_url, referral_code) -> None:
    text_service(gateway, database_url, ANPE, f"OK {referral_code}")
    assert referral(db, referral_code).status == "sent"
    assert "ne vous est pas confiee" in inbox(gateway, ANPE)[0].replace("é", "e")
    assert inbox(gateway, RETURNEE) == []


def test_unknown_code_and_garbage_from_a_provider_get_a_useful_answer(
    gateway, database_url, referral_code
) -> None:
    text_service(gateway, database_url, APEJ, "OK ABCDE")
    text_service(gateway, database_url, APEJ, "bonjour")
    unknown, helps = inbox(gateway, APEJ)
    assert "aucune demande" in unknown and "ABCDE" in unknown
    assert "OK et le code" in helps


def test_reminder_after_a_day_then_expiry_and_reroute_after_two(
    db, redis: Redis, gateway, database_url, referral_code
) -> None:
    assigned = referral(db, referral_code).assigned_at
    queue = Queue(queues.DEFAULT, connection=redis)
    for hours in (25, 25, 49):
        moment = (assigned + timedelta(hours=hours)).isoformat()
        queue.enqueue("workers.deadlines.check_deadlines", moment)
        run_worker(database_url, gateway)
    reminders = [t for t in inbox(gateway, APEJ) if t.startswith("Rappel")]
    assert len(reminders) == 1 and referral_code in reminders[0]  # each deadline acts once
    current = referral(db, referral_code)
    assert current.status == "sent" and current.flagged_at is not None
    assert referral_code in inbox(gateway, ASSOCIATION)[0]
    assert [e.to_status for e in current.events if e.actor == "system"][-2:] == ["expired", "sent"]


def test_a_referral_past_both_deadlines_at_once_expires_without_a_reminder(
    db, redis: Redis, gateway, database_url, referral_code
) -> None:
    """No run came between the day and the two days (a worker was down): expire, do not remind."""
    moment = (referral(db, referral_code).assigned_at + timedelta(hours=49)).isoformat()
    job = Queue(queues.DEFAULT, connection=redis).enqueue("workers.deadlines.check_deadlines", moment)
    run_worker(database_url, gateway)
    job.refresh()
    assert job.return_value() == {"expired": 1, "reminded": 0}
    assert not [t for t in inbox(gateway, APEJ) if t.startswith("Rappel")]
    assert referral_code in inbox(gateway, ASSOCIATION)[0]


def test_stop_silences_non_essential_sms_and_start_undoes_it(
    db, gateway, database_url, referral_code
) -> None:
    text_service(gateway, database_url, RETURNEE, "STOP")
    assert "START" in inbox(gateway, RETURNEE)[-1]
    text_service(gateway, database_url, APEJ, f"OK {referral_code}")
    assert len(inbox(gateway, RETURNEE)) == 1  # no acceptance notice while stopped
    text_service(gateway, database_url, RETURNEE, "start")
    text_service(gateway, database_url, APEJ, f"FINI {referral_code}")
    assert "Repondez 1" in inbox(gateway, RETURNEE)[-1].replace("é", "e")


def test_gateway_opt_out_notice_works_like_stop(client, db) -> None:
    assert client.post("/sms/optout", data={"senderId": "INFO", "phoneNumber": RETURNEE}).status_code == 200
    assert db.scalar(select(Returnee)).opted_out_at is not None
    assert client.post("/sms/optout", data={"senderId": "INFO", "phoneNumber": "nope"}).status_code == 400


def test_status_and_help_keywords_answer_in_the_returnees_language(
    gateway, database_url, referral_code
) -> None:
    text_service(gateway, database_url, RETURNEE, "statut")
    text_service(gateway, database_url, RETURNEE, "AIDE")
    status, help_text = inbox(gateway, RETURNEE)
    assert f"{referral_code} envoyee" in status.replace("é", "e")
    assert "*384*7472#" in help_text and "STOP" in help_text


def test_garbage_from_a_returnee_gets_a_helpful_reply(live_server, db, gateway, database_url) -> None:
    text_service(gateway, database_url, "+22370000999", "ça marche pas ???")
    assert "AIDE" in inbox(gateway, "+22370000999")[0]
    assert db.scalar(select(InboundSms)).handled_as == "unknown"


def test_erasure_needs_the_pin_sent_by_sms_and_then_removes_everything(
    db, redis: Redis, gateway, database_url, referral_code
) -> None:
    # APEJ now holds the name and number, and its own reply says more than it should.
    text_service(gateway, database_url, APEJ, f"OK {referral_code} Awa Traore, enceinte, appeler sa soeur")
    flush_transcripts(database_url)
    assert db.scalar(select(UssdSession)) is not None
    text_service(gateway, database_url, RETURNEE, "SUPPRIMER 000000")
    assert "faux" in inbox(gateway, RETURNEE)[-1]
    text_service(gateway, database_url, RETURNEE, "supprimer")
    pin = next(word for word in inbox(gateway, RETURNEE)[-1].split() if word.isdigit() and len(word) == 6)
    text_service(gateway, database_url, RETURNEE, f"SUPPRIMER {pin}")
    assert "effacees" in inbox(gateway, RETURNEE)[-1].replace("é", "e")
    db.expire_all()
    assert db.scalar(select(Returnee)) is None
    current = referral(db, referral_code)
    assert current.returnee_id is None and current.status == "cancelled"
    everything = " ".join(
        [f"{r.to_e164} {r.body}" for r in db.scalars(select(OutboundSms))]
        + [f"{r.from_e164} {r.text}" for r in db.scalars(select(InboundSms))]
        + [str(e.note) for e in db.scalars(select(ReferralEvent))]
    )
    assert "70000101" not in everything and "Awa" not in everything
    assert db.scalar(select(UssdSession)) is None and db.scalar(select(UssdStep)) is None
    assert not redis.keys("ussd:resume:*") and not redis.keys("ussd:profile:*")


INCOMING = {"from": RETURNEE, "to": "7472", "text": "AIDE", "date": "2017-05-03T06:04:45Z", "id": "in-1",
            "linkId": "link-1"}  # fmt: skip


@pytest.mark.parametrize(
    ("label", "change", "status", "body"),
    [
        ("iso date", {}, 200, "ok: help"),
        ("space date", {"date": "2017-05-03 06:04:45"}, 200, "ok: help"),
        ("empty text", {"text": ""}, 200, "ok: unknown"),
        ("missing from", {"from": None}, 400, "missing field from"),
        ("missing id", {"id": None}, 400, "missing field id"),
        ("missing date", {"date": None}, 400, "missing field date"),
        ("sender not a phone", {"from": "Orange"}, 400, "from is not a phone number"),
        ("bad date", {"date": "yesterday"}, 400, "date 'yesterday' is not like"),
        ("huge text", {"text": "x" * 2000}, 400, "field text is longer"),
    ],
)
def test_incoming_webhook_table(client, db, label, change, status, body) -> None:
    form = {k: v for k, v in {**INCOMING, **change}.items() if v is not None}
    response = client.post("/sms/incoming", data=form)
    assert (response.status_code, response.get_data(as_text=True)[: len(body)]) == (status, body), label
    stored = db.scalars(select(InboundSms)).all()
    assert len(stored) == (1 if status == 200 else 0)
    if stored:
        assert stored[0].sent_at.replace(tzinfo=None).isoformat() == "2017-05-03T06:04:45"


def test_the_same_gateway_id_twice_is_handled_once(client, db) -> None:
    first = client.post("/sms/incoming", data=INCOMING)
    again = client.post("/sms/incoming", data=INCOMING)
    assert first.get_data(as_text=True) == "ok: help" and again.get_data(as_text=True) == "already handled"
    assert len(db.scalars(select(InboundSms)).all()) == 1
    assert len(db.scalars(select(OutboundSms)).all()) == 1


def test_my_requests_shows_the_status_a_provider_just_set(
    live_server, gateway, database_url, referral_code
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    assert f"{referral_code} envoyee" in phone.send("2")  # the dial cached what it read
    text_service(gateway, database_url, APEJ, f"OK {referral_code}")
    assert "Reprendre" not in phone.dial()  # a read-only list left open is not offered for resume
    assert f"{referral_code} acceptee" in phone.send("2")


def test_refusing_consent_when_registering_again_cancels_open_referrals(
    live_server, db, gateway, database_url, referral_code
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    for answer in ("3", "Awa", "2", "3", "1", "1", "1"):
        phone.send(answer)
    assert "annulera vos demandes" in phone.send("2")  # asked first: the request is still open
    assert "Sans votre accord" in phone.send("1")
    current = referral(db, referral_code)
    assert current.status == "cancelled" and current.events[-1].note == "consent withdrawn"
    text_service(gateway, database_url, APEJ, f"OK {referral_code}")
    assert "Awa" not in " ".join(inbox(gateway, APEJ))  # nothing disclosed after withdrawal


def test_my_data_erasure_by_ussd_sends_the_code_by_sms(
    live_server, db, gateway, database_url, referral_code
) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    assert "Mes donnees" in phone.send("5")
    assert "SUPPRIMER" in phone.send("2")
    assert phone.send("1").startswith("END ")
    run_worker(database_url, gateway)
    pin = next(word for word in inbox(gateway, RETURNEE)[-1].split() if word.isdigit() and len(word) == 6)
    text_service(gateway, database_url, RETURNEE, f"SUPPRIMER {pin}")
    flush_transcripts(database_url)  # the steps of the session that asked were still buffered in Redis
    db.expire_all()
    assert db.scalar(select(Returnee)) is None and referral(db, referral_code).status == "cancelled"
    assert db.scalar(select(UssdSession)) is None and db.scalar(select(UssdStep)) is None


def test_my_data_withdraws_consent_by_ussd(live_server, db, gateway, database_url, referral_code) -> None:
    phone = Phone(live_server.url, number=RETURNEE)
    phone.dial()
    phone.send("5")
    phone.send("1")
    assert "retire" in phone.send("1")
    assert referral(db, referral_code).status == "cancelled"
    db.expire_all()
    assert not db.scalar(select(Returnee)).is_registered
