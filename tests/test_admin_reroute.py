"""A re-route that finds no provider says so, sends nothing and records the try; the returnee
hears once that a coordinator is looking, however many re-routes come back empty."""

from __future__ import annotations

from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra import queues
from models.admin import AuditEntry, Role
from models.messaging import OutboundSms
from models.referral import Referral, Status
from services import lifecycle
from tests.test_admin_access import token
from tests.test_admin_referrals import provider, referral_for, seeded, signed_in  # noqa: F401
from web.context import sira

NO_PROVIDER_LEFT = "re-route found no other provider"  # the event's note, as stored
NOBODY_AT_DESK = "Aucun service ne prend ce besoin dans cette région : l'orientation reste à la coordination"
NOBODY_ELSE = "Aucun autre service ne prend ce besoin dans cette région : l'orientation reste à son service"


def sms_count(db: Session, referral: Referral, purpose: str | None = None) -> int:
    query = select(func.count(OutboundSms.id)).where(OutboundSms.referral_id == referral.id)
    if purpose:
        query = query.where(OutboundSms.purpose == purpose)
    return db.scalar(query)


def test_an_automatic_reroute_of_a_desk_referral_with_no_provider_says_so_and_sends_nothing(
    seeded: Flask,  # noqa: F811
    db: Session,
    redis: Redis,
) -> None:
    referral = referral_for(seeded, db, category="psychosocial", region="kidal")  # no service there
    assert referral.provider_id is None and sms_count(db, referral, "returnee_desk") == 1
    before, events = sms_count(db, referral), len(referral.events)
    client = signed_in(seeded, db, Role.COORDINATOR)
    response = client.post(
        f"/admin/referrals/{referral.code}/reroute", data={"provider_id": "", "csrf_token": token(client)}
    )
    page = client.get(response.headers["Location"]).text
    assert NOBODY_AT_DESK in page.replace("&#39;", "'") and "réorientée" not in page
    db.expire_all()
    after = db.get(Referral, referral.id)
    assert (after.status, after.provider_id) == (Status.NEW, None)
    assert sms_count(db, referral) == before and Queue(queues.SMS, connection=redis).count == 0
    [tried] = after.events[events:]
    assert (tried.from_status, tried.to_status, tried.note) == (Status.NEW, Status.NEW, NO_PROVIDER_LEFT)
    assert tried.actor.startswith("user:") and tried.channel == "web"
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "referral.reroute"))
    assert entry.detail == {"from_provider_id": None, "to_provider_id": None, "chosen": False, "found": False}


def test_an_automatic_reroute_with_no_other_provider_leaves_the_referral_with_its_provider(
    seeded: Flask,  # noqa: F811
    db: Session,
) -> None:
    referral = referral_for(seeded, db, category="psychosocial", region="gao")  # csref-gao alone
    holder = provider(db, "csref-gao")
    assert (referral.status, referral.provider_id) == (Status.SENT, holder.id)
    before = sms_count(db, referral)
    client = signed_in(seeded, db, Role.ADMIN)
    response = client.post(
        f"/admin/referrals/{referral.code}/reroute", data={"provider_id": "", "csrf_token": token(client)}
    )
    page = client.get(response.headers["Location"]).text
    assert NOBODY_ELSE in page.replace("&#39;", "'")
    db.expire_all()
    after = db.get(Referral, referral.id)
    assert (after.status, after.provider_id) == (Status.SENT, holder.id)
    assert sms_count(db, referral) == before
    assert after.events[-1].note == NO_PROVIDER_LEFT and after.events[-1].provider_id == holder.id


def test_a_decline_after_the_desk_found_a_provider_does_not_tell_the_returnee_twice(
    seeded: Flask,  # noqa: F811
    db: Session,
) -> None:
    """At the desk (told once), sent by hand to a provider, declined, back at the desk: no second SMS."""
    referral = referral_for(seeded, db, category="psychosocial", region="kidal")
    csref = provider(db, "csref-gao")
    client = signed_in(seeded, db, Role.COORDINATOR)
    client.post(
        f"/admin/referrals/{referral.code}/reroute",
        data={"provider_id": str(csref.id), "csrf_token": token(client)},
    )
    db.expire_all()
    sent = db.get(Referral, referral.id)
    assert sent.provider_id == csref.id
    answer = lifecycle.Answer.of(csref.numbers[0])
    lifecycle.decline(db, sent, answer, "", sira(seeded).sms_texts)
    db.commit()
    db.expire_all()
    back = db.get(Referral, referral.id)
    assert (back.status, back.provider_id) == (Status.DECLINED, None)
    assert sms_count(db, referral, "returnee_desk") == 1
    assert sms_count(db, referral, "provider_declined") == 1  # the provider is still thanked
