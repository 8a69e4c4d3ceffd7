"""Returnees in the admin: found by number (keyed hash) or code, their file audited, erasure on request."""

from __future__ import annotations

import html

from flask import Flask
from redis import Redis
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from models.messaging import OutboundSms
from models.phone import masked, phone_hash
from models.referral import Referral, ReferralEvent, Status
from models.returnee import ConsentRecord, Returnee
from models.ussd import UssdSession
from tests import test_admin_referrals
from tests.conftest import PHONE_HASH_KEY
from tests.test_admin_access import token
from tests.test_admin_referrals import RETURNEE, referral_for, signed_in
from tests.test_admin_ussd_sms import ussd_session
from web.context import sira

seeded = test_admin_referrals.seeded  # the seeded directory, a fixture


def search(client, **form: str):
    return client.post("/admin/returnees", data={**form, "csrf_token": token(client, "/admin/returnees")})


def with_consent(db: Session, returnee_id: int) -> None:
    db.add(ConsentRecord(returnee_id=returnee_id, version="consent-v1", granted=True, channel="ussd"))
    db.commit()


def test_staff_find_a_returnee_by_number_and_read_the_whole_file_audited(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    person = db.get(Returnee, referral.returnee_id)
    with_consent(db, person.id)
    ussd_session(db, "ATUid_file1", phone=RETURNEE, outcome="referral_sent")
    ussd_session(db, "ATUid_other", phone="+22370000999")
    client = signed_in(seeded, db, Role.COORDINATOR)
    found = search(client, phone="70 00 01 01")  # typed as people say it
    assert found.status_code == 302
    assert found.headers["Location"] == f"/admin/returnees/{person.id}"
    page = client.get(found.headers["Location"])
    text = html.unescape(page.text)
    assert page.status_code == 200
    assert "Awa" in text and RETURNEE in text
    assert referral.code in text and "ATUid_file1"[-12:] in text and "ATUid_other" not in text
    assert "consent-v1" in text and "ussd" in text
    assert "Effacer les données" in text
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "returnee.view"))
    assert (entry.object_type, entry.object_id, entry.detail) == (
        "returnee",
        str(person.id),
        {"masked": False},
    )
    assert RETURNEE not in found.headers["Location"]


def test_the_search_never_compares_numbers_with_like(seeded: Flask, db: Session) -> None:
    referral_for(seeded, db)
    client = signed_in(seeded, db, Role.COORDINATOR)
    statements: list[str] = []
    engine = db.get_bind()

    def record(conn, cursor, statement, *rest) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert search(client, phone="+22370000101").status_code == 302
    finally:
        event.remove(engine, "before_cursor_execute", record)
    lookups = [s for s in statements if "FROM returnee" in s]
    assert lookups and all(
        "LIKE" not in s.upper() and "phone_e164" not in s.split("WHERE")[-1] for s in lookups
    )


def test_by_referral_code_and_clear_answers_for_no_one_or_bad_input(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.COORDINATOR)
    found = search(client, code=referral.code.lower())
    assert found.headers["Location"] == f"/admin/returnees/{referral.returnee_id}"
    for form, message in (
        ({"phone": "+22370009999"}, "Aucun migrant de retour trouvé."),
        ({"code": "ZZZZZ"}, "Aucun migrant de retour trouvé."),
        ({"phone": "12"}, "Numéro de téléphone invalide."),
        ({"code": "<script>"}, "Un code d'orientation compte 5 lettres ou chiffres."),
        ({}, "Saisissez un numéro de téléphone ou un code d'orientation."),
        ({"code": "ABCDE12345"}, "Un code d'orientation compte 5 lettres ou chiffres."),
        ({"phone": "   ", "code": " "}, "Saisissez un numéro de téléphone ou un code d'orientation."),
    ):
        page = search(client, **form)
        assert page.status_code == 200 and message in html.unescape(page.text), form
    assert client.get("/admin/returnees/999999").status_code == 404


def test_viewers_see_the_file_masked_and_cannot_erase(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.VIEWER)
    page = client.get(f"/admin/returnees/{referral.returnee_id}")
    text = html.unescape(page.text)
    assert page.status_code == 200
    assert masked(RETURNEE) in text and RETURNEE not in text and "Awa" not in text and "A •••" in text
    assert "Effacer" not in text
    assert client.get(f"/admin/returnees/{referral.returnee_id}/erase").status_code == 403
    refused = client.post(
        f"/admin/returnees/{referral.returnee_id}/erase", data={"confirm": "1", "csrf_token": token(client)}
    )
    assert refused.status_code == 403
    assert db.get(Returnee, referral.returnee_id) is not None
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "returnee.view"))
    assert entry.detail == {"masked": True}


def test_viewers_find_a_file_by_referral_code_only(seeded: Flask, db: Session) -> None:
    """A viewer sees +22370 •• •• 01: a search by number would let them try the four hidden digits."""
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.VIEWER)
    assert 'name="phone"' not in client.get("/admin/returnees").text
    refused = search(client, phone=RETURNEE)
    assert refused.status_code == 403 and "par code d'orientation" in html.unescape(refused.text)
    assert (
        search(client, code=referral.code).headers["Location"] == f"/admin/returnees/{referral.returnee_id}"
    )
    assert 'name="phone"' not in client.get("/admin/ussd/sessions").text
    form = {"phone": RETURNEE, "csrf_token": token(client)}
    assert client.post("/admin/ussd/sessions", data=form).status_code == 403
    staff = signed_in(seeded, db, Role.COORDINATOR)
    assert search(staff, phone=RETURNEE).headers["Location"] == f"/admin/returnees/{referral.returnee_id}"


def test_providers_do_not_know_these_pages_exist(seeded: Flask, db: Session) -> None:
    referral = referral_for(seeded, db)
    client = signed_in(seeded, db, Role.PROVIDER, referral.provider_id)
    assert client.get("/admin/returnees").status_code == 404
    assert client.get(f"/admin/returnees/{referral.returnee_id}").status_code == 404
    assert client.get(f"/admin/returnees/{referral.returnee_id}/erase").status_code == 404
    assert search(client, phone=RETURNEE).status_code == 404
    assert "/admin/returnees" not in client.get("/admin/referrals").text


def test_erasure_asks_for_confirmation_then_erases_everywhere_and_is_audited(
    seeded: Flask, db: Session, redis: Redis
) -> None:
    referral = referral_for(seeded, db)
    person_id, digest = referral.returnee_id, phone_hash(RETURNEE, PHONE_HASH_KEY)
    with_consent(db, person_id)
    ussd_session(db, "ATUid_gone", phone=RETURNEE)
    store = sira(seeded).ussd_store
    redis.set(f"ussd:resume:{digest}", b"sealed")
    redis.set(store._profile_key(digest), b"sealed")
    client = signed_in(seeded, db, Role.COORDINATOR)
    confirm = client.get(f"/admin/returnees/{person_id}/erase")
    assert confirm.status_code == 200 and "Effacer définitivement" in html.unescape(confirm.text)
    unconfirmed = client.post(f"/admin/returnees/{person_id}/erase", data={"csrf_token": token(client)})
    assert unconfirmed.status_code == 400
    assert "Cochez la case" in html.unescape(unconfirmed.text)
    db.expire_all()
    assert db.get(Returnee, person_id) is not None

    done = client.post(
        f"/admin/returnees/{person_id}/erase", data={"confirm": "1", "csrf_token": token(client)}
    )
    assert done.status_code == 302 and done.headers["Location"] == "/admin/returnees?done=erased"
    db.expire_all()
    assert db.get(Returnee, person_id) is None
    assert db.scalars(select(ConsentRecord).where(ConsentRecord.returnee_id == person_id)).all() == []
    assert db.scalar(select(UssdSession).where(UssdSession.phone_hash == digest)) is None
    kept = db.get(Referral, referral.id)
    assert (kept.returnee_id, kept.status) == (None, Status.CANCELLED)
    cancel = db.scalar(
        select(ReferralEvent).where(
            ReferralEvent.referral_id == referral.id, ReferralEvent.to_status == "cancelled"
        )
    )
    assert cancel.channel == "web" and cancel.actor.startswith("user:")
    assert not db.scalars(select(OutboundSms).where(OutboundSms.to_hash == digest)).all()
    assert not redis.exists(f"ussd:resume:{digest}", store._profile_key(digest))
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "returnee.erase"))
    assert entry.object_id == str(person_id) and entry.detail == {"referrals": 1}
    assert "Les données du migrant de retour ont été effacées." in html.unescape(
        client.get(done.headers["Location"]).text
    )
    assert search(client, phone=RETURNEE).status_code == 200  # no one any more
    assert client.get(f"/admin/returnees/{person_id}").status_code == 404
