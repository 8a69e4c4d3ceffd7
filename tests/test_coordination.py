"""The coordination desk's use cases, called as a view calls them: with a session, the caller
committing. A re-route refuses what the lifecycle or the directory forbids and changes nothing;
a retry moves only a dead message; a provider's numbers keep their rows."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.directory import Provider
from models.messaging import OutboundSms, SmsStatus
from models.referral import Referral, Status
from services import coordination
from services.referrals import refer
from tests.test_admin_referrals import provider, referral_for, returnee, seeded  # noqa: F401
from web.context import sira


def test_a_reroute_to_a_provider_without_the_need_is_refused_and_changes_nothing(
    seeded: Flask,  # noqa: F811
    db: Session,
) -> None:
    referral = referral_for(seeded, db)
    before = (referral.status, referral.provider_id, len(referral.events))
    wrong = next(p for p in db.query(Provider) if referral.category not in {c.code for c in p.categories})
    with pytest.raises(coordination.CannotReroute):
        coordination.reroute(db, referral, wrong.id, sira(seeded).sms_texts, "user:1", "withdrawn")
    with pytest.raises(coordination.CannotReroute):
        coordination.reroute(db, referral, 999_999, sira(seeded).sms_texts, "user:1", "withdrawn")
    assert (referral.status, referral.provider_id, len(referral.events)) == before


def test_a_closed_referral_cannot_be_rerouted(seeded: Flask, db: Session) -> None:  # noqa: F811
    referral: Referral = referral_for(seeded, db)
    referral.status = Status.CLOSED
    assert not coordination.can_reroute(referral)
    with pytest.raises(coordination.CannotReroute):
        coordination.reroute(db, referral, None, sira(seeded).sms_texts, "user:1", "withdrawn")


def test_a_rerouted_sent_referral_is_withdrawn_with_the_note_then_sent_on(
    seeded: Flask,  # noqa: F811
    db: Session,
) -> None:
    referral = referral_for(seeded, db)
    assert referral.status == Status.SENT
    first = referral.provider_id
    done = coordination.reroute(db, referral, None, sira(seeded).sms_texts, "user:7", "withdrawn here")
    db.commit()
    withdrawn = next(e for e in referral.events if e.to_status == Status.DECLINED)
    assert (withdrawn.actor, withdrawn.note, withdrawn.provider_id) == ("user:7", "withdrawn here", first)
    assert done.previous_provider_id == first
    if done.found:
        assert referral.status == Status.SENT and referral.provider_id != first and done.sms_ids


@pytest.mark.parametrize("status", [s for s in SmsStatus if s != SmsStatus.DEAD])
def test_only_a_dead_message_is_retried(db: Session, status: SmsStatus) -> None:
    row = OutboundSms(
        to_e164="+22370000101", to_hash="h", body="x", purpose="test", status=status, attempts=3
    )
    db.add(row)
    db.flush()
    assert not coordination.retry_dead_sms(db, row.id)
    db.refresh(row)
    assert (row.status, row.attempts) == (status, 3)


def test_a_dead_message_goes_back_to_the_outbox_from_scratch(db: Session) -> None:
    row = OutboundSms(
        to_e164="+22370000101", to_hash="h", body="x", purpose="test", status="dead", attempts=12
    )
    db.add(row)
    db.flush()
    assert coordination.retry_dead_sms(db, row.id)
    db.refresh(row)
    assert (row.status, row.attempts, row.claimed_at) == (SmsStatus.PENDING, 0, None)


def test_a_providers_kept_numbers_keep_their_rows_and_labels(seeded: Flask, db: Session) -> None:  # noqa: F811
    apej = provider(db, "apej")
    apej.replace_numbers([("+22370000090", "h-one")], labels={"h-one": "desk"})
    db.commit()
    kept_id = apej.numbers[0].id
    apej.replace_numbers([("+22370000091", "h-two"), ("+22370000090", "h-one")])
    db.commit()
    db.expire_all()
    numbers = {n.phone_hash: (n.id, n.label) for n in provider(db, "apej").numbers}
    assert numbers["h-one"] == (kept_id, "desk") and numbers["h-two"][1] is None and len(numbers) == 2


def test_a_referral_refused_by_the_database_for_another_reason_than_a_race_says_so(
    seeded: Flask,  # noqa: F811
    db: Session,
) -> None:
    """Only a racing request's duplicate is taken for one: any other integrity fault (here a need the
    directory does not know) surfaces as itself, not as a crash further on."""
    with pytest.raises(IntegrityError):
        refer(db, returnee(db), "no_such_need", sira(seeded).sms_texts)
