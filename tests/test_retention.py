"""The retention purge, against a controlled clock: transcripts go after 30 days, SMS texts are
blanked after 90, finished referrals are cut from their returnee after a year; a second run
changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from app import create_app
from infra import queues
from infra.keys import STEP_DEAD
from infra.sealing import Sealer
from models import FollowUp, InboundSms, OutboundSms, Referral, ReferralEvent, Returnee, UssdSession, UssdStep
from models.directory import Category, Provider
from models.returnee import ConsentRecord, Erasure
from services.erasure import ERASED
from services.transcripts import SEALING_PURPOSE, step_record
from tests.conftest import REDIS_URL, SECRET_KEY, app_settings, run_worker
from web.context import sira
from workers.retention import PURGED, purge_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def referral(session, returnee: Returnee, code: str, status: str, need: str, age_days: float,
             provider: Provider | None) -> Referral:  # fmt: skip
    row = Referral(code=code, returnee_id=returnee.id, category="jobs", requested_category=need, status=status,
                   provider_id=provider.id if provider else None, created_at=days_ago(age_days + 5),
                   updated_at=days_ago(age_days))  # fmt: skip
    session.add(row)
    session.flush()
    session.add(ReferralEvent(referral_id=row.id, to_status=status, actor="provider:1", channel="sms",
                              note="she is expecting a child", at=days_ago(age_days)))  # fmt: skip
    session.add(OutboundSms(to_e164="+22370000002", to_hash="p", body=f"{code}: contact Awa, +22370000101",
                            purpose="provider_accepted", referral_id=row.id, status="accepted",
                            created_at=days_ago(10)))  # fmt: skip
    return row


@pytest.fixture
def stored(app: Flask) -> dict[str, int]:
    """A bit of everything, at known ages."""
    with sira(app).sessions() as s:
        s.add(Category(code="jobs", name="Jobs", sms_label="emploi"))
        provider = Provider(slug="apej", name="APEJ", kind="public")
        awa = Returnee(phone_hash="h-awa", phone_e164="+22370000101", first_name="Awa", language="fr",
                       consent_version="consent-v1", registered_at=days_ago(500))  # fmt: skip
        s.add_all([provider, awa])
        s.flush()
        s.add(
            UssdSession(session_id="old", phone_hash="h-awa", service_code="*384#", started_at=days_ago(31))
        )
        s.add(
            UssdSession(session_id="new", phone_hash="h-awa", service_code="*384#", started_at=days_ago(29))
        )
        s.flush()
        s.add_all([UssdStep(session_id="old", seq=i, user_input="Awa", screen="CON x", server_ms=1.0,
                            at=days_ago(31)) for i in range(2)])  # fmt: skip
        s.add(
            UssdStep(session_id="new", seq=0, user_input="1", screen="CON x", server_ms=1.0, at=days_ago(29))
        )
        for gid, age in (("in-old", 91), ("in-new", 89)):
            s.add(InboundSms(gateway_id=gid, from_e164="+22370000101", from_hash="h-awa", to="7472",
                             text="je cherche du travail", sent_at=days_ago(age), received_at=days_ago(age)))  # fmt: skip
        for purpose, status, age in (("old-sent", "accepted", 91), ("old-pending", "pending", 91),
                                     ("new-sent", "accepted", 89)):  # fmt: skip
            s.add(OutboundSms(to_e164="+22370000101", to_hash="h-awa", body="Sira: votre code R7K3Q",
                              purpose=purpose, status=status, created_at=days_ago(age)))  # fmt: skip
        ids = {
            "closed_old": referral(s, awa, "CLOSD", "closed", "jobs", 400, provider).id,
            "cancelled_recent": referral(s, awa, "CANCL", "cancelled", "jobs", 300, None).id,
            "sent_old": referral(s, awa, "SENTX", "sent", "jobs", 400, provider).id,
            "expired_at_desk": referral(s, awa, "DESKX", "expired", "health", 400, None).id,
            "expired_old": referral(s, awa, "EXPRD", "expired", "training", 400, provider).id,
        }
        for code in ("closed_old", "cancelled_recent"):  # an outcome each (cancelled: only to compare)
            s.add(FollowUp(referral_id=ids[code], returnee_id=awa.id, day=30, status="served",
                           sent_at=days_ago(300), answered_at=days_ago(299)))  # fmt: skip
        s.commit()
    return ids


def state(app: Flask) -> dict[str, object]:
    with sira(app).sessions() as s:
        return {
            "steps": sorted(s.scalars(select(UssdStep.session_id)).all()),
            "sessions": s.scalar(select(func.count()).select_from(UssdSession)),
            # Texts and numbers are encrypted: joined here, once decrypted, not in SQL.
            "inbound": {m.gateway_id: f"{m.text}|{m.from_e164}" for m in s.scalars(select(InboundSms))},
            "outbound": {m.purpose: f"{m.body}|{m.to_e164}" for m in s.scalars(select(OutboundSms))},
            "referrals": dict(s.execute(select(Referral.code, Referral.returnee_id)).all()),
            "notes": dict(s.execute(select(Referral.code, ReferralEvent.note).join(ReferralEvent)).all()),
            "returnee": s.scalar(select(Returnee.first_name)),
            "follow_ups": {code: (person, status) for code, person, status in s.execute(
                select(Referral.code, FollowUp.returnee_id, FollowUp.status).join(FollowUp))},
        }  # fmt: skip


def test_each_period_purges_only_what_is_older(app: Flask, stored: dict[str, int]) -> None:
    with sira(app).sessions() as s:
        counts = purge_at(s, sira(app).settings, NOW)
    assert counts == {"ussd_steps": 2, "inbound_sms": 1, "outbound_sms": 1, "referrals": 2,
                      "erasure_records": 0, "withdrawn_returnees": 0}  # fmt: skip
    after = state(app)
    assert after["steps"] == ["new"] and after["sessions"] == 2  # sessions stay, without what was typed
    assert after["inbound"] == {"in-old": f"{PURGED}|", "in-new": "je cherche du travail|+22370000101"}
    outbound = after["outbound"]
    assert outbound["old-sent"] == f"{PURGED}|" and outbound["new-sent"].startswith("Sira: votre code")
    assert outbound["old-pending"].startswith("Sira: votre code")  # still to be sent: left alone
    refs = after["referrals"]
    assert refs["CLOSD"] is None and refs["EXPRD"] is None  # finished over a year ago: no one behind them
    assert None not in (refs["CANCL"], refs["SENTX"], refs["DESKX"])  # recent, open, or at the desk
    assert after["notes"]["CLOSD"] is None and after["notes"]["CANCL"] == "she is expecting a child"
    with sira(app).sessions() as s:
        bodies = dict(s.execute(select(Referral.code, OutboundSms.body).join(Referral)).all())
    assert bodies["CLOSD"] == ERASED and bodies["EXPRD"] == ERASED and "Awa" in bodies["SENTX"]
    assert after["returnee"] == "Awa"  # the person stays registered; only old records lose them
    # The old referral's outcome stays for the figures, without a person; the recent one keeps them.
    assert after["follow_ups"]["CLOSD"] == (None, "served") and after["follow_ups"]["CANCL"][0] is not None


def test_a_second_run_changes_nothing(app: Flask, stored: dict[str, int]) -> None:
    settings = sira(app).settings
    with sira(app).sessions() as s:
        purge_at(s, settings, NOW)
    first = state(app)
    with sira(app).sessions() as s:
        assert purge_at(s, settings, NOW) == {
            "ussd_steps": 0,
            "inbound_sms": 0,
            "outbound_sms": 0,
            "referrals": 0,
            "erasure_records": 0,
            "withdrawn_returnees": 0,
        }
    assert state(app) == first


def test_the_periods_are_settings(database_url: str, redis: Redis, stored: dict[str, int]) -> None:
    app = create_app(app_settings(database_url, retention_transcript_days=10, retention_sms_days=200,
                                  retention_referral_days=100))  # fmt: skip
    with sira(app).sessions() as s:
        counts = purge_at(s, sira(app).settings, NOW)
    assert counts == {"ussd_steps": 3, "inbound_sms": 0, "outbound_sms": 0, "referrals": 3,
                      "erasure_records": 0, "withdrawn_returnees": 0}  # fmt: skip


def set_aside(redis: Redis, secret: str, at: datetime, typed: str) -> bytes:
    """A step the transcript flush could not write, as it keeps it in Redis."""
    record = step_record("ATUid_x", 3, typed, "CON Votre sexe", 1.0, at.isoformat(), None)
    blob = Sealer(secret, SEALING_PURPOSE).seal(record)
    redis.rpush(STEP_DEAD, blob)
    return blob


def test_the_worker_runs_the_purge_as_a_job_at_a_given_time(database_url: str, app: Flask, stored) -> None:
    with Redis.from_url(REDIS_URL) as redis:
        set_aside(redis, SECRET_KEY, days_ago(31), "Awa")
        recent = set_aside(redis, SECRET_KEY, days_ago(29), "Kadi")
        set_aside(redis, "a-secret-since-rotated", days_ago(1), "Fanta")  # can never be written now
        job = Queue(queues.DEFAULT, connection=redis).enqueue("workers.retention.purge", NOW.isoformat())
        run_worker(database_url)
        job.refresh()
        assert job.return_value() == {"ussd_steps": 2, "inbound_sms": 1, "outbound_sms": 1, "referrals": 2,
                                      "erasure_records": 0, "withdrawn_returnees": 0,
                                      "rejected_callbacks": 0, "set_aside_steps": 2}  # fmt: skip
        assert redis.lrange(STEP_DEAD, 0, -1) == [recent]
    assert state(app)["steps"] == ["new"]


def test_a_withdrawn_consent_is_kept_its_period_then_the_person_is_erased(app: Flask, redis: Redis) -> None:
    """Withdrawal is not erasure at once (no PIN proves who withdrew); after
    RETENTION_WITHDRAWN_DAYS without a new consent, the purge erases the person as erasure does."""
    people = {"withdrew_long_ago": (40, False), "withdrew_lately": (20, False), "consented_again": (40, True)}
    with sira(app).sessions() as s:
        for name, (age, again) in people.items():
            person = Returnee(phone_hash=f"h-{name}", phone_e164="+22370000101", first_name="Awa",
                              language="fr", registered_at=days_ago(age + 10),
                              consent_version="consent-v1" if again else None)  # fmt: skip
            s.add(person)
            s.flush()
            s.add(ConsentRecord(returnee_id=person.id, version="consent-v1", granted=True, channel="ussd",
                                at=days_ago(age + 10)))  # fmt: skip
            s.add(ConsentRecord(returnee_id=person.id, version="consent-v1", granted=False, channel="ussd",
                                at=days_ago(age)))  # fmt: skip
            if again:
                s.add(ConsentRecord(returnee_id=person.id, version="consent-v1", granted=True,
                                    channel="ussd", at=days_ago(age - 5)))  # fmt: skip
        s.add(Erasure(phone_hash="h-erased-long-ago", erased_at=days_ago(3)))
        s.commit()
    with sira(app).sessions() as s:
        counts = purge_at(s, sira(app).settings, NOW)
        left = set(s.scalars(select(Returnee.phone_hash)))
        erased = set(s.scalars(select(Erasure.phone_hash)))
    assert counts["withdrawn_returnees"] == 1 and counts["erasure_records"] == 1, counts
    assert left == {"h-withdrew_lately", "h-consented_again"}
    assert erased == {"h-withdrew_long_ago"}  # its own record, for the sessions still open
    with sira(app).sessions() as s:
        assert purge_at(s, sira(app).settings, NOW)["withdrawn_returnees"] == 0
