"""The CNRM directory in and out of HSDS 3.0 (Open Referral), the sector's format.

One Sira provider is one HSDS organization with one service. Its needs and regions are HSDS
attributes pointing at taxonomy terms of two taxonomies, `sira-needs` (the categories) and
`sira-regions` (the regions, `parent_id` for the region a new one was cut from); each region it
serves is a service area. Its focal points' SMS numbers are the service's phones of type `text`,
its public contact number the phone of type `voice`. What HSDS has no field for is an extension
property named `sira_...` (README, "The directory in HSDS 3.0").

Ids are UUIDs derived from Sira's own keys, so an export is stable and an import recognises
what it already holds. An import is all or nothing: any problem refuses the whole file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.directory import Category, Provider, ProviderNumber, Region
from services.directory_rules import CONTACT, FOCAL_POINT, NEEDS, REGIONS, HashPhone, Reader, Wanted
from services.hsds_schema import HSDS_VERSION, HsdsInvalid, tables

NAMESPACE = uuid.UUID("6f0c7a52-3c2e-4c8e-9d0e-5a1b2c3d4e5f")  # never change: ids derive from it
TAXONOMIES = {
    NEEDS: "Kinds of need a returnee can ask Sira for; `code` is Sira's category code.",
    REGIONS: "Regions of Mali and the Bamako district; `code` is Sira's region code.",
}


def hsds_id(*key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, ":".join(key)))


def export_directory(session: Session) -> dict[str, Any]:
    """The whole directory as an HSDS 3.0 JSON data package (providers in id order: ties go to the older)."""
    categories = list(session.scalars(select(Category).order_by(Category.position, Category.code)))
    regions = list(session.scalars(select(Region).order_by(Region.part_of.is_not(None), Region.code)))
    providers = list(session.scalars(select(Provider).order_by(Provider.id)))
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "taxonomy", "taxonomy_term", "organization", "service", "attribute", "service_area", "location", "phone")}  # fmt: skip
    for name, description in TAXONOMIES.items():
        rows["taxonomy"].append({"id": hsds_id("taxonomy", name), "name": name, "description": description})
    for c in categories:
        rows["taxonomy_term"].append({
            "id": hsds_id("need", c.code), "code": c.code, "name": c.name, "description": c.name,
            "taxonomy": NEEDS, "taxonomy_id": hsds_id("taxonomy", NEEDS),
            "sira_sms_label": c.sms_label, "sira_position": c.position,
        })  # fmt: skip
    for r in regions:
        term = {"id": hsds_id("region", r.code), "code": r.code, "name": r.name, "description": r.name,
                "taxonomy": REGIONS, "taxonomy_id": hsds_id("taxonomy", REGIONS)}  # fmt: skip
        if r.part_of:
            term["parent_id"] = hsds_id("region", r.part_of)
        rows["taxonomy_term"].append(term)
    for p in providers:
        org_id, service_id = hsds_id("organization", p.slug), hsds_id("service", p.slug)
        rows["organization"].append({"id": org_id, "name": p.name, "description": p.kind})
        rows["service"].append({
            "id": service_id, "organization_id": org_id, "name": p.name, "description": p.kind,
            "status": "active" if p.active else "inactive", "sira_slug": p.slug, "sira_national": p.national,
            "sira_daily_capacity": p.daily_capacity, "sira_sms_language": p.language,
        })  # fmt: skip
        for c in sorted(p.categories, key=lambda c: (c.position, c.code)):
            rows["attribute"].append({
                "id": hsds_id("service-need", p.slug, c.code), "link_id": service_id, "link_entity": "service",
                "link_type": "need", "taxonomy_term_id": hsds_id("need", c.code),
            })  # fmt: skip
        for r in sorted(p.regions, key=lambda r: r.code):
            area_id = hsds_id("service-area", p.slug, r.code)
            rows["service_area"].append({"id": area_id, "service_id": service_id, "name": r.name})
            rows["attribute"].append({
                "id": hsds_id("service-area-region", p.slug, r.code), "link_id": area_id,
                "link_entity": "service_area", "link_type": "region", "taxonomy_term_id": hsds_id("region", r.code),
            })  # fmt: skip
        for n in p.numbers:
            phone = {"id": hsds_id("phone", p.slug, n.phone_e164), "service_id": service_id,
                     "number": n.phone_e164, "type": FOCAL_POINT}  # fmt: skip
            if n.label:
                phone["description"] = n.label
            rows["phone"].append(phone)
        if p.contact_phone:
            rows["phone"].append({"id": hsds_id("contact-phone", p.slug), "service_id": service_id,
                                  "number": p.contact_phone, "type": CONTACT})  # fmt: skip
    return {
        "name": "sira-directory",
        "title": "Sira: the CNRM directory",
        "profile": "data-package",
        "hsds_version": HSDS_VERSION,
        "resources": [{"name": name, "data": data} for name, data in rows.items()],
    }


@dataclass
class Report:
    """What an import changed, record by record, and what it left aside."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    untouched: list[str] = field(default_factory=list)  # providers in the database, not in the file

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        out = [f"created {what}" for what in self.created] + [f"updated {what}" for what in self.updated]
        out.append(
            f"{len(self.created)} created, {len(self.updated)} updated, {self.unchanged} unchanged"
            if self.changed else f"nothing changed ({self.unchanged} records already as in the file)"
        )  # fmt: skip
        for table, n in sorted(self.ignored.items()):
            out.append(f"left aside: {n} {table} rows (Sira keeps no such records)")
        if self.untouched:
            out.append(f"not in the file, left as they are: {', '.join(self.untouched)}")
        return out


def read_directory(document: object, hash_phone: HashPhone) -> Wanted:
    """Validate the file (HSDS schemas, then Sira's own rules) into what the tables should hold.

    Raises HsdsInvalid naming every faulty record and field; nothing is written here.
    """
    return Reader(tables(document), hash_phone).read()


def import_directory(session: Session, document: object, hash_phone: HashPhone) -> Report:
    """Create or update categories, regions and providers from an HSDS file, in the caller's transaction.

    Nothing is deleted: a provider missing from the file is reported and left as it is.
    """
    wanted = read_directory(document, hash_phone)
    report = Report(ignored=wanted.ignored)
    taken = {n.phone_hash: n.provider.slug for n in session.scalars(select(ProviderNumber))}
    slugs = {p["slug"] for p in wanted.providers}
    clashes = [
        f"phone {e164}: number: already the number of provider {taken[h]}, which the file does not list"
        for p in wanted.providers for e164, h, _label in p["numbers"] if taken.get(h, p["slug"]) not in slugs
    ]  # fmt: skip
    if clashes:
        raise HsdsInvalid(clashes)
    for code, (name, sms_label, position) in wanted.categories.items():
        _put(
            session,
            report,
            Category,
            code,
            f"category {code}",
            name=name,
            sms_label=sms_label,
            position=position,
        )
    for code, (name, part_of) in wanted.regions.items():
        _put(session, report, Region, code, f"region {code}", name=name, part_of=part_of)
    session.flush()
    existing = {p.slug: p for p in session.scalars(select(Provider))}
    # A number moving between two providers of the file: free it everywhere first.
    moving = {
        h for p in wanted.providers for _, h, _label in p["numbers"] if taken.get(h, p["slug"]) != p["slug"]
    }
    freed = set()
    for provider in existing.values():
        if any(n.phone_hash in moving for n in provider.numbers):
            provider.numbers = [n for n in provider.numbers if n.phone_hash not in moving]
            freed.add(provider.slug)
    session.flush()
    for item in wanted.providers:
        provider = existing.get(item["slug"])
        changes = _apply_provider(session, provider or Provider(slug=item["slug"]), item)
        if item["slug"] in freed and "numbers" not in changes:
            changes.append("numbers")
        if provider is None:
            report.created.append(f"provider {item['slug']}")
        elif changes:
            report.updated.append(f"provider {item['slug']} ({', '.join(changes)})")
        else:
            report.unchanged += 1
    report.untouched = sorted(set(existing) - slugs)
    session.flush()
    return report


def _put(session: Session, report: Report, model: type, key: str, label: str, **values: Any) -> None:
    row = session.get(model, key)
    if row is None:
        session.add(model(code=key, **values))
        report.created.append(label)
        return
    changes = [name for name, value in values.items() if getattr(row, name) != value]
    for name in changes:
        setattr(row, name, values[name])
    if changes:
        report.updated.append(f"{label} ({', '.join(changes)})")
    else:
        report.unchanged += 1


def _apply_provider(session: Session, provider: Provider, item: dict[str, Any]) -> list[str]:
    """Write one provider as the file has it; returns the names of the fields that changed."""
    changes = []
    for name in ("name", "kind", "national", "daily_capacity", "language", "contact_phone", "active"):
        if getattr(provider, name) != item[name]:
            setattr(provider, name, item[name])
            changes.append(name)
    if sorted(c.code for c in provider.categories) != sorted(item["categories"]):
        provider.categories = [session.get(Category, code) for code in item["categories"]]
        changes.append("categories")
    if sorted(r.code for r in provider.regions) != sorted(item["regions"]):
        provider.regions = [session.get(Region, code) for code in item["regions"]]
        changes.append("regions")
    have = sorted((n.phone_e164, n.phone_hash, n.label or None) for n in provider.numbers)
    if have != sorted(item["numbers"]):
        provider.replace_numbers(
            [(e164, digest) for e164, digest, _ in item["numbers"]],
            labels={digest: label for _, digest, label in item["numbers"]},
        )
        changes.append("numbers")
    if provider.id is None:
        session.add(provider)
    session.flush()
    return changes
