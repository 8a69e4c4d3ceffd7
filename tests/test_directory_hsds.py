"""The directory in HSDS 3.0: `flask directory export|import`, the seed, and the admin's download.

Round trips compare the directory tables themselves (by natural keys, not surrogate ids), and
the export is checked row by row against the published schemas with `jsonschema` directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from jsonschema import Draft202012Validator, FormatChecker
from redis import Redis
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from models.directory import Category, Provider, Region
from tests.conftest import ROOT, _empty_tables, app_settings
from tests.journeys import app_with_directory
from tests.test_admin_access import login, make_user
from web.context import sira

SCHEMAS = ROOT / "schemas" / "hsds-3.0"


def snapshot(app: Flask) -> dict[str, Any]:
    """Every directory table, keyed by what identifies a record outside this database."""
    with sira(app).sessions() as s:
        return {
            "category": sorted((c.code, c.name, c.sms_label, c.position) for c in s.scalars(select(Category))),
            "region": sorted((r.code, r.name, r.part_of) for r in s.scalars(select(Region))),
            "provider": [
                (p.slug, p.name, p.kind, p.national, p.daily_capacity, p.language, p.contact_phone, p.active,
                 sorted(c.code for c in p.categories), sorted(r.code for r in p.regions),
                 sorted((n.phone_e164, n.phone_hash, n.label) for n in p.numbers))
                for p in s.scalars(select(Provider).order_by(Provider.id))
            ],
        }  # fmt: skip


def run(app: Flask, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def export(app: Flask, path: Path) -> dict[str, Any]:
    result = run(app, "directory", "export", "--output", str(path))
    assert result.exit_code == 0, result.output
    return json.loads(path.read_text(encoding="utf-8"))


def rows_of(package: dict[str, Any], table: str) -> list[dict[str, Any]]:
    return next(r["data"] for r in package["resources"] if r["name"] == table)


@pytest.fixture
def seeded(database_url: str, redis: Redis) -> Flask:
    return app_with_directory(app_settings(database_url))


def edit_beyond_the_seed(app: Flask) -> None:
    """Fields the sample leaves at their defaults: a contact number, a number's label, an inactive provider."""
    with sira(app).sessions() as s:
        apej = s.scalar(select(Provider).where(Provider.slug == "apej"))
        apej.contact_phone, apej.numbers[0].label = "+22320000099", "Focal point, Bamako"
        apej.language = "bm"
        s.scalar(select(Provider).where(Provider.slug == "fafpa")).active = False
        s.commit()


def test_an_export_imports_back_into_an_empty_database_identically(
    seeded: Flask, database_url: str, tmp_path: Path
) -> None:
    edit_beyond_the_seed(seeded)
    before = snapshot(seeded)
    package = export(seeded, tmp_path / "directory.json")
    _empty_tables(database_url)
    assert snapshot(seeded)["provider"] == []

    result = run(seeded, "directory", "import", str(tmp_path / "directory.json"))

    assert result.exit_code == 0, result.output
    assert "created provider apej" in result.output and "45 created, 0 updated, 0 unchanged" in result.output
    assert snapshot(seeded) == before
    assert len(rows_of(package, "service")) == len(before["provider"]) == 15
    assert export(seeded, tmp_path / "again.json") == package  # ids are stable: the same file again


def test_the_export_validates_against_the_published_hsds_schemas(seeded: Flask, tmp_path: Path) -> None:
    edit_beyond_the_seed(seeded)
    package = export(seeded, tmp_path / "directory.json")
    schemas = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMAS.glob("*.json")}
    registry = Registry().with_resources(
        (name, Resource.from_contents(schema, default_specification=DRAFT202012))
        for name, schema in schemas.items()
    )
    checked = 0
    for resource in package["resources"]:
        validator = Draft202012Validator(
            schemas[f"{resource['name']}.json"], registry=registry, format_checker=FormatChecker()
        )
        for row in resource["data"]:
            assert list(validator.iter_errors(row)) == [], (resource["name"], row)
            checked += 1
    assert checked > 100
    apej = next(s for s in rows_of(package, "service") if s["sira_slug"] == "apej")
    phones = [p for p in rows_of(package, "phone") if p["service_id"] == apej["id"]]
    assert {(p["number"], p["type"]) for p in phones} == {("+22370000002", "text"), ("+22320000099", "voice")}
    fafpa = next(s for s in rows_of(package, "service") if s["sira_slug"] == "fafpa")
    assert fafpa["status"] == "inactive" and fafpa["sira_national"] is True


def test_importing_the_same_file_twice_changes_nothing_the_second_time(seeded: Flask, tmp_path: Path) -> None:
    edit_beyond_the_seed(seeded)
    path = tmp_path / "directory.json"
    package = export(seeded, path)
    rows_of(package, "service")[0]["name"] = "ANPE, renamed"
    path.write_text(json.dumps(package), encoding="utf-8")

    first = run(seeded, "directory", "import", str(path))
    after_first = snapshot(seeded)
    second = run(seeded, "directory", "import", str(path))

    assert first.exit_code == 0 and "updated provider anpe (name)" in first.output, first.output
    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output and "updated" not in second.output
    assert snapshot(seeded) == after_first


def test_the_seed_is_the_hsds_file_and_running_it_again_changes_nothing(seeded: Flask) -> None:
    result = run(seeded, "seed")
    assert result.exit_code == 0, result.output
    assert "nothing changed (45 records already as in the file)" in result.output
    assert (
        json.loads((ROOT / "seed" / "directory.hsds.json").read_text(encoding="utf-8"))["hsds_version"]
        == "3.0"
    )


def break_status(package: dict[str, Any]) -> None:
    rows_of(package, "service")[3]["status"] = "open"


def break_number(package: dict[str, Any]) -> None:
    rows_of(package, "phone")[2]["number"] = "not a number"


def break_need_link(package: dict[str, Any]) -> None:
    rows_of(package, "attribute")[0]["taxonomy_term_id"] = "00000000-0000-4000-8000-000000000000"


def break_id(package: dict[str, Any]) -> None:
    rows_of(package, "organization")[1]["id"] = "anpe"


def break_slug(package: dict[str, Any]) -> None:
    del rows_of(package, "service")[5]["sira_slug"]


def odd_resource(package: dict[str, Any]) -> None:
    package["resources"].append({"name": ["service"], "data": "rows"})


def need_without_code(package: dict[str, Any]) -> None:
    del rows_of(package, "taxonomy_term")[1]["code"]


def unknown_table(package: dict[str, Any]) -> None:
    package["resources"].append({"name": "providers", "data": []})


@pytest.mark.parametrize(
    ("breaks", "named"),
    [
        (break_status, ": status: 'open' is not one of"),
        (break_number, ": number: 'not a number' is not a phone number"),
        (break_need_link, "attribute 5a"),  # refined below: the record and the field are both named
        (break_id, "organization anpe: id: 'anpe' is not a 'uuid'"),
        (break_slug, ": sira_slug: required by Sira"),
        (unknown_table, "'name' 'providers' is not an HSDS 3.0 table"),
        (need_without_code, ": code: required by Sira"),
        (odd_resource, "resource #9: 'name' ['service'] is not an HSDS 3.0 table"),
    ],
)
def test_a_broken_file_is_refused_whole_naming_the_record_and_field(
    seeded: Flask, tmp_path: Path, breaks, named: str
) -> None:
    path = tmp_path / "directory.json"
    package = export(seeded, path)
    before = snapshot(seeded)
    rows_of(package, "service")[0]["name"] = "A valid change in the same file"
    rows_of(package, "taxonomy_term")[0]["name"] = "Another valid change"
    breaks(package)
    path.write_text(json.dumps(package), encoding="utf-8")

    result = run(seeded, "directory", "import", str(path))

    assert result.exit_code != 0
    assert "refused, nothing was changed" in result.output
    if breaks is break_need_link:
        first = rows_of(package, "attribute")[0]["id"]
        assert f"attribute {first}: taxonomy_term_id: no such taxonomy term in the file" in result.output
    else:
        assert named in result.output, result.output
    assert snapshot(seeded) == before


def test_a_file_that_is_not_json_is_refused(seeded: Flask, tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    path.write_text("organization,service\n", encoding="utf-8")
    before = snapshot(seeded)
    result = run(seeded, "directory", "import", str(path))
    assert result.exit_code != 0 and "is not JSON" in result.output
    assert snapshot(seeded) == before


def test_a_number_held_by_a_provider_left_out_of_the_file_is_refused(seeded: Flask, tmp_path: Path) -> None:
    """The database's own providers count too: a number cannot be given away silently."""
    path = tmp_path / "directory.json"
    package = export(seeded, path)
    before = snapshot(seeded)
    services = rows_of(package, "service")
    anpe = next(s for s in services if s["sira_slug"] == "anpe")
    apej = next(s for s in services if s["sira_slug"] == "apej")
    rows_of(package, "service").remove(anpe)
    package["resources"] = [
        {
            **r,
            "data": [
                row for row in r["data"] if anpe["id"] not in (row.get("service_id"), row.get("link_id"))
            ],
        }
        for r in package["resources"]
    ]
    anpe_number = {"id": "1554f2e2-a373-45db-a3fa-9fc48a61c15e", "service_id": apej["id"],
                   "number": "+223 70 00 00 01", "type": "text"}  # fmt: skip
    rows_of(package, "phone").append(anpe_number)
    path.write_text(json.dumps(package), encoding="utf-8")

    result = run(seeded, "directory", "import", str(path))

    assert result.exit_code != 0
    assert "phone +22370000001: number: already the number of provider anpe" in result.output
    assert snapshot(seeded) == before


def test_a_number_moving_between_two_providers_of_the_file_is_moved(seeded: Flask, tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    package = export(seeded, path)
    services = {s["sira_slug"]: s["id"] for s in rows_of(package, "service")}
    moving = next(p for p in rows_of(package, "phone") if p["number"] == "+22366000024")
    moving["service_id"] = services["apej"]
    path.write_text(json.dumps(package), encoding="utf-8")

    result = run(seeded, "directory", "import", str(path))

    assert result.exit_code == 0, result.output
    assert "updated provider oim-mali (numbers)" in result.output
    assert "updated provider apej (numbers)" in result.output
    providers = {p[0]: p for p in snapshot(seeded)["provider"]}
    assert [n[0] for n in providers["oim-mali"][-1]] == ["+22370000004"]
    assert sorted(n[0] for n in providers["apej"][-1]) == ["+22366000024", "+22370000002"]


def test_the_providers_page_offers_the_export_and_the_download_is_audited(seeded: Flask, db: Session) -> None:
    client = seeded.test_client()
    make_user(db, "viewer@example.org", Role.VIEWER)
    login(client, "viewer@example.org")

    page = client.get("/admin/providers")
    assert "Télécharger l&#39;annuaire (HSDS 3.0, Open Referral)" in page.text
    assert 'href="/admin/providers/directory.hsds.json"' in page.text
    response = client.get("/admin/providers/directory.hsds.json")

    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    package = response.get_json()
    assert {s["sira_slug"] for s in rows_of(package, "service")} >= {"anpe", "apej", "oim-mali"}
    db.expire_all()
    assert db.scalar(select(AuditEntry.object_type).where(AuditEntry.action == "export")) == "directory"


def test_a_providers_focal_point_cannot_download_the_directory(seeded: Flask, db: Session) -> None:
    anpe = db.scalar(select(Provider.id).where(Provider.slug == "anpe"))
    make_user(db, "anpe@example.org", Role.PROVIDER, provider_id=anpe)
    client = login(seeded.test_client(), "anpe@example.org")

    response = client.get("/admin/providers/directory.hsds.json")

    assert response.status_code in (403, 404)
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "export")) is None


def test_rows_of_tables_sira_does_not_keep_are_validated_and_reported(seeded: Flask, tmp_path: Path) -> None:
    path = tmp_path / "directory.json"
    package = export(seeded, path)
    rows_of(package, "location").append(
        {"id": "3a19ff88-4620-4d17-9830-ac1d859eb5d5", "location_type": "physical", "name": "Bureau de Kayes"}
    )
    path.write_text(json.dumps(package), encoding="utf-8")
    result = run(seeded, "directory", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "left aside: 1 location rows (Sira keeps no such records)" in result.output

    rows_of(package, "location")[0]["location_type"] = "office"
    path.write_text(json.dumps(package), encoding="utf-8")
    result = run(seeded, "directory", "import", str(path))
    assert result.exit_code != 0
    assert (
        "location 3a19ff88-4620-4d17-9830-ac1d859eb5d5: location_type: 'office' is not one of"
        in result.output
    )
