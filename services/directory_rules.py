"""Sira's own rules for an HSDS directory file, once it has passed the published schemas.

HSDS leaves most fields optional; Sira needs each service's slug, needs, regions (or national)
and focal-point numbers, and the links between the tables to hold. Every broken rule becomes
a problem naming the record and the field, and the whole file is refused.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flows.i18n import LANGUAGES
from services.hsds_schema import refuse_if_any

NEEDS, REGIONS = "sira-needs", "sira-regions"  # the names of Sira's two taxonomies
FOCAL_POINT, CONTACT = "text", "voice"  # HSDS phone types: an SMS number, the public contact
MAX_CAPACITY = 10_000
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}$")
# The HSDS tables Sira reads; rows of the others are validated, then reported as left aside.
KEPT = ("taxonomy", "taxonomy_term", "organization", "service", "attribute", "service_area", "phone")

HashPhone = Callable[[str], tuple[str, str]]  # a typed number -> (E.164, keyed hash); ValueError if not one


@dataclass
class Wanted:
    """The directory the file describes, in Sira's terms."""

    categories: dict[str, tuple[str, str, int]]  # code: (name, sms label, position)
    regions: dict[str, tuple[str, str | None]]  # code: (name, part of)
    providers: list[dict[str, Any]]  # in file order: a new provider's id, hence its tie-break rank
    ignored: dict[str, int]


class Reader:
    """Reads validated HSDS tables into a Wanted, gathering every problem before refusing."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]], hash_phone: HashPhone) -> None:
        self.rows = {name: rows.get(name, []) for name in KEPT}
        self.hash_phone = hash_phone
        self.problems: list[str] = []
        self.need_ids: list[str] = []  # term ids, in file order
        self.region_ids: list[str] = []
        self.ignored = {name: len(data) for name, data in rows.items() if name not in KEPT and data}

    def problem(self, table: str, row: dict[str, Any], field: str, message: str) -> None:
        self.problems.append(f"{table} {row.get('id')}: {field}: {message}")

    def text(self, table: str, row: dict[str, Any], field: str, longest: int) -> str:
        value = row.get(field)
        if not isinstance(value, str) or not value.strip():
            self.problem(table, row, field, "required by Sira")
            return ""
        if len(value) > longest:
            self.problem(table, row, field, f"longer than {longest} characters")
        return value.strip()

    def read(self) -> Wanted:
        taxonomy_names = {t["id"]: t["name"] for t in self.rows["taxonomy"]}
        terms = {t["id"]: t for t in self.rows["taxonomy_term"]}

        def taxonomy_of(term: dict[str, Any]) -> str | None:
            return taxonomy_names.get(term.get("taxonomy_id", "")) or term.get("taxonomy")

        self.need_ids = [i for i, t in terms.items() if taxonomy_of(t) == NEEDS]
        self.region_ids = [i for i, t in terms.items() if taxonomy_of(t) == REGIONS]
        categories = self.categories([terms[i] for i in self.need_ids])
        regions = self.regions([terms[i] for i in self.region_ids], terms)
        other_terms = len(terms) - len(self.need_ids) - len(self.region_ids)
        if other_terms:
            self.ignored["taxonomy_term"] = other_terms
        providers = self.providers(terms)
        refuse_if_any(self.problems)
        return Wanted(categories, regions, providers, self.ignored)

    def categories(self, terms: list[dict[str, Any]]) -> dict[str, tuple[str, str, int]]:
        out = {}
        for t in terms:
            code = self.text("taxonomy_term", t, "code", 30)
            name = self.text("taxonomy_term", t, "name", 80)
            label = self.text("taxonomy_term", t, "sira_sms_label", 30)
            if code in out:
                self.problem("taxonomy_term", t, "code", "two needs have this code")
            position = t.get("sira_position", 0)
            if not isinstance(position, int) or isinstance(position, bool):
                self.problem("taxonomy_term", t, "sira_position", "must be a whole number")
            out[code] = (name, label, position)
        return out

    def regions(
        self, terms: list[dict[str, Any]], all_terms: dict[str, dict[str, Any]]
    ) -> dict[str, tuple[str, str | None]]:
        out = {}
        for t in terms:
            code = self.text("taxonomy_term", t, "code", 20)
            name = self.text("taxonomy_term", t, "name", 40)
            if code in out:
                self.problem("taxonomy_term", t, "code", "two regions have this code")
            parent = all_terms.get(t["parent_id"]) if t.get("parent_id") in self.region_ids else None
            if "parent_id" in t and parent is None:
                self.problem("taxonomy_term", t, "parent_id", "is not a region of this file")
            out[code] = (name, parent.get("code") if parent else None)
        return out

    def providers(self, terms: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        organizations = {o["id"] for o in self.rows["organization"]}
        services = {s["id"]: s for s in self.rows["service"]}
        areas = {a["id"]: a for a in self.rows["service_area"]}
        wanted: dict[str, dict[str, Any]] = {}
        for s in services.values():
            wanted[s["id"]] = self.provider(s, organizations)
        slugs = Counter(p["slug"] for p in wanted.values())
        for s in services.values():
            if slugs[wanted[s["id"]]["slug"]] > 1:
                self.problem("service", s, "sira_slug", "two services have this slug")
        area_region: dict[str, str] = {}
        for a in self.rows["attribute"]:
            term = terms.get(a.get("taxonomy_term_id", ""))
            entity, link = a.get("link_entity"), a.get("link_id", "")
            if "taxonomy_term_id" in a and term is None:
                self.problem("attribute", a, "taxonomy_term_id", "no such taxonomy term in the file")
            elif term and entity == "service" and term["id"] in self.need_ids:
                if link not in wanted:
                    self.problem("attribute", a, "link_id", "no such service in the file")
                elif term.get("code") and term["code"] not in wanted[link]["categories"]:
                    wanted[link]["categories"].append(term["code"])
            elif term and entity == "service_area" and term["id"] in self.region_ids:
                if link not in areas:
                    self.problem("attribute", a, "link_id", "no such service area in the file")
                elif term.get("code"):
                    area_region[link] = term["code"]
            else:
                self.ignored["attribute"] = self.ignored.get("attribute", 0) + 1
        for a in areas.values():
            if a.get("service_id") not in wanted:
                self.problem("service_area", a, "service_id", "no such service in the file")
            elif a["id"] not in area_region:
                self.problem(
                    "service_area", a, "attributes", "Sira needs the region (a sira-regions term) it covers"
                )
            elif area_region[a["id"]] not in wanted[a["service_id"]]["regions"]:
                wanted[a["service_id"]]["regions"].append(area_region[a["id"]])
        self.phones(wanted)
        for s in services.values():
            p = wanted[s["id"]]
            if not p["categories"]:
                self.problem("service", s, "attributes", "Sira needs at least one need (a sira-needs term)")
            if not p["regions"] and not p["national"]:
                self.problem("service", s, "service_areas", "Sira needs a region, or sira_national true")
            if not p["numbers"]:
                self.problem(
                    "service", s, "phones", "Sira needs at least one SMS number (a phone of type 'text')"
                )
        return list(wanted.values())

    def provider(self, s: dict[str, Any], organizations: set[str]) -> dict[str, Any]:
        slug = s.get("sira_slug")
        if not isinstance(slug, str) or not SLUG.match(slug):
            self.problem(
                "service", s, "sira_slug", "required by Sira: lower-case letters, digits and '-', 60 at most"
            )
        if "organization_id" in s and s["organization_id"] not in organizations:
            self.problem("service", s, "organization_id", "no such organization in the file")
        national = s.get("sira_national", False)
        if not isinstance(national, bool):
            self.problem("service", s, "sira_national", "must be true or false")
        capacity = s.get("sira_daily_capacity", 10)
        if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= MAX_CAPACITY:
            self.problem("service", s, "sira_daily_capacity", f"a whole number from 1 to {MAX_CAPACITY}")
        language = s.get("sira_sms_language", "fr")
        if language not in LANGUAGES:
            self.problem("service", s, "sira_sms_language", f"one of {', '.join(LANGUAGES)}")
        return {
            "slug": slug, "name": self.text("service", s, "name", 120), "kind": self.text("service", s, "description", 40),
            "national": national, "daily_capacity": capacity, "language": language, "active": s["status"] == "active",
            "contact_phone": None, "categories": [], "regions": [], "numbers": [],
        }  # fmt: skip

    def phones(self, wanted: dict[str, dict[str, Any]]) -> None:
        owners: dict[str, str] = {}
        for ph in self.rows["phone"]:
            if "service_id" not in ph:
                self.ignored["phone"] = self.ignored.get("phone", 0) + 1
                continue
            provider = wanted.get(ph["service_id"])
            if provider is None:
                self.problem("phone", ph, "service_id", "no such service in the file")
                continue
            try:
                e164, digest = self.hash_phone(ph["number"])
            except ValueError:
                self.problem("phone", ph, "number", f"{ph['number'][:32]!r} is not a phone number")
                continue
            kind = ph.get("type")
            if kind == FOCAL_POINT:
                if owners.setdefault(digest, ph["service_id"]) != ph["service_id"]:
                    self.problem(
                        "phone", ph, "number", "already the SMS number of another service in the file"
                    )
                elif digest not in {h for _, h, _label in provider["numbers"]}:
                    provider["numbers"].append((e164, digest, ph.get("description") or None))
            elif kind == CONTACT:
                if provider["contact_phone"] is not None:
                    self.problem("phone", ph, "type", "a service has one 'voice' contact number at most")
                provider["contact_phone"] = e164
            else:
                self.problem(
                    "phone", ph, "type", "Sira reads 'text' (an SMS number) or 'voice' (the contact)"
                )
