"""Providers in the admin: load and response times, create/edit with checked input, deactivation."""

from __future__ import annotations

import html
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from models.base import utcnow
from models.directory import Provider
from models.phone import phone_hash
from models.referral import Status
from services.referrals import match_provider
from tests import test_admin_referrals
from tests.conftest import PHONE_HASH_KEY
from tests.test_admin_access import token
from tests.test_admin_referrals import provider, referral_for, signed_in
from web.admin.providers import duration

NEW = {
    "name": "Centre d'écoute de Kati",
    "kind": "listening centre",
    "capacity": "12",
    "language": "bm",
    "categories": ["psychosocial", "health"],
    "regions": ["koulikoro"],
    "numbers": "70 00 00 91\n+223 66 00 00 92\n70 00 00 91",
    "contact_phone": "",
}

seeded = test_admin_referrals.seeded  # the seeded directory, a fixture


def post(client: FlaskClient, path: str, form: dict) -> object:
    return client.post(path, data={**form, "csrf_token": token(client, "/admin/providers")})


def test_the_list_shows_open_load_capacity_and_median_response(seeded: Flask, db: Session) -> None:
    first = referral_for(seeded, db, phone="+22370000101", category="activity", region="kayes")
    second = referral_for(seeded, db, phone="+22370000102", category="activity", region="kayes")
    third = referral_for(seeded, db, phone="+22370000103", category="activity", region="kayes")
    apej = db.get(Provider, first.provider_id)
    assert second.provider_id == third.provider_id == apej.id
    # Answers 2 h, 4 h and 9 h after assignment: the median is 4 h.
    for referral, hours, status in ((first, 2, Status.ACCEPTED), (second, 4, Status.ACCEPTED),
                                    (third, 9, Status.DECLINED)):  # fmt: skip
        sent = next(e for e in referral.events if e.to_status == Status.SENT)
        sent.at = utcnow() - timedelta(hours=10)
        answer = referral.move(status, actor=f"provider:{apej.id}", channel="sms")
        answer.provider_id, answer.at = apej.id, sent.at + timedelta(hours=hours)
        if status == Status.DECLINED:
            referral.provider_id = None
    db.commit()
    # An answer older than 90 days does not count; nor does a withdrawal by the coordination.
    old = referral_for(seeded, db, phone="+22370000104", category="activity", region="kayes")
    sent = next(e for e in old.events if e.to_status == Status.SENT)
    sent.at = utcnow() - timedelta(days=100)
    old.move(Status.ACCEPTED, actor=f"provider:{apej.id}", channel="sms").provider_id = apej.id
    db.flush()
    old.events[-1].at = sent.at + timedelta(minutes=5)
    db.commit()
    client = signed_in(seeded, db, Role.VIEWER)
    page = client.get("/admin/providers")
    assert page.status_code == 200
    text = html.unescape(page.text)
    row = text[text.index(apej.name) :].split("</tr>")[0]
    assert '<td class="num">3</td>' in row  # three accepted (the declined one went to the desk)
    assert f"/ {apej.daily_capacity}" in row
    assert "4 h 00" in row and "(3 réponses)" in row
    assert "Modifier" not in text and "Nouveau prestataire" not in text  # viewers read only


def test_durations_read_as_people_say_them() -> None:
    assert duration(None) == "-"
    assert duration(timedelta(minutes=45)) == "45 min"
    assert duration(timedelta(hours=3, minutes=5)) == "3 h 05"
    assert duration(timedelta(days=2, hours=4)) == "2 j 4 h"


def test_staff_create_a_provider_with_its_numbers_in_e164_and_it_is_audited(
    seeded: Flask, db: Session
) -> None:
    client = signed_in(seeded, db, Role.COORDINATOR)
    assert client.get("/admin/providers/new").status_code == 200
    response = post(client, "/admin/providers/new", NEW)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/providers?done=created"
    created = db.scalar(select(Provider).where(Provider.slug == "centre-d-ecoute-de-kati"))
    assert (created.name, created.kind, created.daily_capacity, created.language, created.national) == (
        "Centre d'écoute de Kati", "listening centre", 12, "bm", False,
    )  # fmt: skip
    assert sorted(c.code for c in created.categories) == ["health", "psychosocial"]
    assert [r.code for r in created.regions] == ["koulikoro"]
    assert [(n.phone_e164, n.phone_hash) for n in created.numbers] == [
        ("+22370000091", phone_hash("+22370000091", PHONE_HASH_KEY)),
        ("+22366000092", phone_hash("+22366000092", PHONE_HASH_KEY)),
    ]
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "provider.create"))
    assert entry.object_id == str(created.id)
    assert match_provider(db, "psychosocial", "koulikoro").id == created.id


def test_bad_input_shows_the_form_again_with_messages_and_saves_nothing(seeded: Flask, db: Session) -> None:
    client = signed_in(seeded, db, Role.COORDINATOR)
    before = db.scalar(select(func.count()).select_from(Provider))
    anpe_number = provider(db, "anpe").numbers[0].phone_e164
    for changes, message in (
        ({"name": "  "}, "Le nom est obligatoire."),
        ({"capacity": "-3"}, "La capacité est un nombre entier"),
        ({"capacity": "lots"}, "La capacité est un nombre entier"),
        ({"categories": []}, "Choisissez au moins une catégorie."),
        ({"categories": ["no-such-thing"]}, "Choisissez au moins une catégorie."),
        ({"regions": []}, "Choisissez au moins une région"),
        ({"numbers": "70 00 00 91\nnot a number"}, "not a number n'est pas un numéro de téléphone valide."),
        ({"numbers": ""}, "Au moins un numéro SMS est obligatoire."),
        ({"numbers": anpe_number}, f"{anpe_number} est déjà le numéro d'un autre prestataire."),
        ({"contact_phone": "12"}, "Le numéro de contact n'est pas un numéro de téléphone valide."),
        ({"language": "xx"}, "Choisissez une langue."),
        ({"name": "N" * 121}, "Le nom est trop long"),
        ({"kind": " "}, "Le type de service est obligatoire."),
        ({"kind": "k" * 41}, "Le type est trop long"),
        ({"capacity": "10001"}, "La capacité est un nombre entier"),
        ({"regions": ["atlantis"]}, "Région inconnue."),
        ({"numbers": "\n".join(f"+2237000{n:04d}" for n in range(11))}, "10 numéros SMS au maximum."),
    ):
        page = post(client, "/admin/providers/new", {**NEW, **changes})
        text = html.unescape(page.text)
        assert page.status_code == 400, changes
        assert message in text and "Rien n'a été enregistré" in text, changes
        assert "Centre d'écoute de Kati" in text or changes.get("name")  # what was typed is kept
    assert db.scalar(select(func.count()).select_from(Provider)) == before
    assert db.scalar(select(AuditEntry).where(AuditEntry.action.startswith("provider."))) is None
    national = post(client, "/admin/providers/new", {**NEW, "regions": [], "national": "1"})
    assert national.status_code == 302


def test_editing_keeps_unchanged_numbers_and_audits_the_fields_changed(seeded: Flask, db: Session) -> None:
    anpe = provider(db, "anpe")
    kept = anpe.numbers[0]
    kept.label = "focal point"
    db.commit()
    client = signed_in(seeded, db, Role.ADMIN)
    form = client.get(f"/admin/providers/{anpe.id}/edit")
    assert form.status_code == 200 and kept.phone_e164 in form.text
    response = post(
        client, f"/admin/providers/{anpe.id}/edit",
        {"name": anpe.name, "kind": anpe.kind, "national": "1", "capacity": "35", "language": "fr",
         "categories": ["jobs"], "regions": [], "numbers": f"{kept.phone_e164}\n76 00 00 77", "contact_phone": ""},
    )  # fmt: skip
    assert response.status_code == 302
    db.expire_all()
    anpe = db.get(Provider, anpe.id)
    assert anpe.daily_capacity == 35
    assert next((n.id, n.label) for n in anpe.numbers) == (kept.id, "focal point")
    assert [n.phone_e164 for n in anpe.numbers] == [kept.phone_e164, "+22376000077"]
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "provider.update"))
    assert entry.detail == {"fields": ["capacity", "numbers"]}
    assert client.get("/admin/providers/999999/edit").status_code == 404


def test_a_deactivated_provider_gets_no_new_referrals_until_reactivated(seeded: Flask, db: Session) -> None:
    apej = provider(db, "apej")
    assert match_provider(db, "activity", "kayes").id == apej.id
    client = signed_in(seeded, db, Role.COORDINATOR)
    response = post(client, f"/admin/providers/{apej.id}/active", {"active": "0"})
    assert response.status_code == 302
    db.expire_all()
    assert db.get(Provider, apej.id).active is False
    assert match_provider(db, "activity", "kayes").slug == "oim-mali"  # the national one
    referral = referral_for(seeded, db, category="activity", region="kayes")
    assert referral.provider_id != apej.id
    assert "désactivé" in html.unescape(client.get("/admin/providers").text)
    post(client, f"/admin/providers/{apej.id}/active", {"active": "1"})
    db.expire_all()
    assert match_provider(db, "activity", "kayes").id == apej.id
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "provider")).all()
    assert actions == ["provider.deactivate", "provider.reactivate"]
    assert post(client, f"/admin/providers/{apej.id}/active", {"active": "maybe"}).status_code == 400


def test_viewers_cannot_change_providers_and_focal_points_cannot_see_them(seeded: Flask, db: Session) -> None:
    apej = provider(db, "apej")
    viewer = signed_in(seeded, db, Role.VIEWER)
    assert viewer.get("/admin/providers/new").status_code == 403
    assert viewer.get(f"/admin/providers/{apej.id}/edit").status_code == 403
    assert post(viewer, f"/admin/providers/{apej.id}/active", {"active": "0"}).status_code == 403
    assert post(viewer, "/admin/providers/new", NEW).status_code == 403
    focal = signed_in(seeded, db, Role.PROVIDER, apej.id)
    assert focal.get("/admin/providers").status_code == 404
    assert focal.get(f"/admin/providers/{apej.id}/edit").status_code == 404
    db.expire_all()
    assert db.get(Provider, apej.id).active is True
    assert db.scalar(select(AuditEntry).where(AuditEntry.action.startswith("provider."))) is None
