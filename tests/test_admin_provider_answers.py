"""A provider's focal point answers on the web: accept, decline with a reason, close its own
referral, through the same lifecycle and outbox as an SMS answer; others' referrals do not exist."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from infra import queues
from models.admin import AuditEntry, Role
from models.messaging import OutboundSms
from models.referral import Referral, Status
from tests.test_admin_access import token
from tests.test_admin_referrals import RETURNEE, referral_for, seeded, signed_in  # noqa: F401


def answer(client: FlaskClient, code: str, action: str, **form: str):
    return client.post(
        f"/admin/referrals/{code}/{action}",
        data={**form, "csrf_token": token(client, f"/admin/referrals/{code}")},
    )


def outbox(db: Session, referral_id: int) -> list[OutboundSms]:
    query = select(OutboundSms).where(OutboundSms.referral_id == referral_id).order_by(OutboundSms.id)
    return list(db.scalars(query))


def test_accept_then_close_on_the_web_tell_the_returnee_through_the_outbox(
    seeded: Flask,  # noqa: F811
    db: Session,
    redis: Redis,
) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.PROVIDER, referral.provider_id)
    assert "Awa" not in client.get(f"/admin/referrals/{referral.code}").text
    response = answer(client, referral.code, "accept")
    assert response.status_code == 302 and "done=accepted" in response.location
    page = client.get(response.location).text
    assert "Awa" in page and RETURNEE in page

    answer(client, referral.code, "close")
    db.expire_all()
    closed = db.get(Referral, referral.id)
    assert closed.status == Status.CLOSED and closed.feedback_requested_at is not None
    accepted, done = closed.events[-2:]
    assert (accepted.to_status, accepted.channel, accepted.provider_id) == (
        Status.ACCEPTED,
        "web",
        referral.provider_id,
    )
    assert done.actor == accepted.actor and done.actor.startswith("user:")
    # The returnee hears of both; the provider's phones get no confirmation of what it did on the web.
    new = outbox(db, referral.id)[-2:]
    assert [r.purpose for r in new] == ["returnee_accepted", "returnee_feedback"]
    queued = Queue(queues.SMS, connection=redis).job_ids
    assert all(queues.sms_job_id(r.id) in queued for r in new)
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.object_id == referral.code)).all()
    assert "referral.accept" in actions and "referral.close" in actions


def test_a_decline_with_a_reason_goes_to_the_next_provider(seeded: Flask, db: Session) -> None:  # noqa: F811
    referral = referral_for(seeded, db)
    first = referral.provider_id
    client = signed_in(seeded, db, Role.PROVIDER, first)
    response = answer(client, referral.code, "decline", reason="Plus de place ce mois-ci")
    assert response.status_code == 302 and response.location.endswith("/admin/referrals?done=declined")
    assert "elle part vers un autre prestataire" in client.get(response.location).text
    db.expire_all()
    moved = db.get(Referral, referral.id)
    declined = next(e for e in moved.events if e.to_status == Status.DECLINED)
    assert (declined.note, declined.provider_id, declined.channel) == (
        "Plus de place ce mois-ci",
        first,
        "web",
    )
    assert moved.provider_id != first
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.decline"))
    assert entry.detail == {"reason": True}  # the reason's text stays out of the audit log
    assert client.get(f"/admin/referrals/{referral.code}").status_code == 404  # no longer its own


def test_a_move_the_lifecycle_forbids_is_a_409_that_changes_nothing(seeded: Flask, db: Session) -> None:  # noqa: F811
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.PROVIDER, referral.provider_id)
    assert answer(client, referral.code, "close").status_code == 409  # not accepted yet
    db.expire_all()
    assert db.get(Referral, referral.id).status == Status.SENT
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.close")) is None


def test_another_providers_referral_is_404_and_staff_cannot_answer_for_a_provider(
    seeded: Flask,  # noqa: F811
    db: Session,
) -> None:
    mine = referral_for(seeded, db)
    other = referral_for(seeded, db, phone="+22370000102", category="health")
    client = signed_in(seeded, db, Role.PROVIDER, mine.provider_id)
    assert answer(client, mine.code, "accept").status_code == 302
    other_csrf = token(client)
    response = client.post(f"/admin/referrals/{other.code}/accept", data={"csrf_token": other_csrf})
    assert response.status_code == 404
    coordinator = signed_in(seeded, db, Role.COORDINATOR)
    assert answer(coordinator, other.code, "accept").status_code == 403
    db.expire_all()
    assert db.get(Referral, other.id).status == Status.SENT
