"""Staff read words, not codes: every admin page, in French and in English, with data that holds
every status, need, kind, outcome, purpose, actor and audit value, shows no stored code as text."""

from __future__ import annotations

import re
from collections import deque
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from flows import options
from flows.screens import End
from flows.sms_commands import Command
from models.admin import AuditEntry, Role, User, audit
from models.base import utcnow
from models.follow_up import FollowUp, FollowUpStatus
from models.messaging import DELIVERY_RANK, InboundSms, OutboundSms, SmsStatus
from models.phone import phone_hash
from models.referral import Flag, Referral, ReferralEvent, Status
from models.returnee import Returnee, record_consent
from models.ussd import UssdSession, UssdStep
from services import lifecycle
from services.referrals import refer
from tests.conftest import PHONE_HASH_KEY
from tests.test_admin_access import login, make_user, token
from tests.test_admin_referrals import provider, seeded  # noqa: F401
from web.admin.i18n import LANG_COOKIE
from web.context import sira

SKIPPED = ("/logout", ".csv", "/language", "/favicon")
SEPARATORS = re.compile(r"\s*(?:·|,|:|\(|\)|=|→|/|\n)\s*")


class VisibleText(HTMLParser):
    """The text a reader sees (cells, labels, options, headings), and the page's links.

    Text in <code> is left out: queue, job and worker names are technical identifiers, shown as such."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._hidden += 1
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.texts.append(data.strip())


def returnee(db: Session, n: int, **fields: str) -> Returnee:
    phone = f"+2237000030{n}"
    person = Returnee(
        phone_hash=phone_hash(phone, PHONE_HASH_KEY), phone_e164=phone, first_name=f"Awa{n}",
        registered_at=utcnow(), **{"region": "bamako", **fields},
    )  # fmt: skip
    db.add(person)
    db.flush()
    record_consent(person, "consent-v1", True, "ussd")
    return person


def every_code(app: Flask, db: Session) -> set[str]:
    """Every code the service stores and a page might show, read from the enums and the data."""
    screens = sira(app).engine.conversation.screens.values()
    codes = {s.value for s in Status} | {s.value for s in SmsStatus} | {c.value for c in Command}
    codes |= {s.value for s in FollowUpStatus}
    codes |= {s.id for s in screens if isinstance(s, End)} | {r.value for r in Role}
    codes |= {code for code, _ in options.LANGUAGE_NAMES}
    for table in (
        options.SEXES,
        options.AGE_GROUPS,
        options.COUNTRIES,
        options.RETURNED_SINCE,
        options.CATEGORIES,
    ):
        codes |= {o.code for o in table}
    codes |= set(DELIVERY_RANK) | {"Incomplete", "None", "True", "False", "child_protection"}
    codes |= {f.value for f in Flag}
    for column in (OutboundSms.purpose, InboundSms.handled_as, InboundSms.sender_kind, AuditEntry.action,
                   AuditEntry.object_type, ReferralEvent.actor, ReferralEvent.channel, Returnee.age_group):  # fmt: skip
        codes |= {v for v in db.scalars(select(column).distinct()) if v and ":" not in v}
    return codes


@pytest.fixture
def everything(seeded: Flask, db: Session) -> Flask:  # noqa: F811
    """Referrals in every status, returnees with every answer, sessions with every outcome, SMS of
    every purpose and status both ways, and audit entries with flags and empty values."""
    texts = sira(seeded).sms_texts
    people = [
        returnee(db, 1, sex="m", age_group="u18", returned_from="ly", returned_since="lt3m", language="bm"),
        returnee(
            db, 2, sex="f", age_group="26-35", returned_from="other", returned_since="gt2y", language="en"
        ),
        returnee(db, 3, sex="f", age_group="50+", returned_from="europe", returned_since="3-12m"),
    ]
    for person, code in zip(people, ("jobs", "psychosocial", "legal"), strict=True):
        refer(db, person, code, texts)
    kidal = returnee(db, 4, region="kidal", age_group="36-50", returned_from="dz", returned_since="1-2y")
    refer(db, kidal, "psychosocial", texts)  # at the desk
    db.flush()
    for status in (Status.ACCEPTED, Status.CLOSED, Status.CANCELLED, Status.EXPIRED):
        person = returnee(db, 5 + list(Status).index(status), age_group="18-25", returned_from="mr")
        referral = refer(db, person, "jobs", texts).referral
        number = db.get(type(referral.provider), referral.provider_id).numbers[0]
        if status in (Status.ACCEPTED, Status.CLOSED):
            lifecycle.accept(db, referral, number, texts)
        if status == Status.CLOSED:
            lifecycle.close(db, referral, number, texts)
            referral.feedback = "not_served"
            referral.flag(Flag.NOT_HELPED)  # the returnee was not helped: a coordinator must look
            db.flush()  # its follow-ups, one in each status (a coordinator's task among them)
            db.add_all([FollowUp(referral_id=referral.id, returnee_id=person.id, day=30 + n, status=s,
                                 sent_at=utcnow(), answered_at=utcnow()) for n, s in enumerate(FollowUpStatus)])  # fmt: skip
        if status == Status.CANCELLED:
            referral.move(Status.CANCELLED, actor="system", channel="system", note="consent withdrawn")
        if status == Status.EXPIRED:
            referral.move(Status.EXPIRED, actor="system", channel="system")
            lifecycle.expire(db, referral, texts)
            lifecycle.remind(db, referral, texts)
    apej = provider(db, "apej").numbers[0]
    declined = db.scalar(
        select(Referral).where(Referral.provider_id == apej.provider_id, Referral.status == Status.SENT)
    )
    if declined is not None:
        lifecycle.decline(db, declined, apej, "", texts)
    screens = sira(seeded).engine.conversation.screens.values()
    ends = sorted(s.id for s in screens if isinstance(s, End))
    for n, (outcome, end) in enumerate(
        zip([*ends, None], ["Success", "Failed", "Incomplete", None, None, None], strict=False)
    ):
        session_id = f"ATUid_labels_{n}"
        db.add(UssdSession(session_id=session_id, phone_hash=people[0].phone_hash, service_code="*384*7472#",
                           language=("fr", "bm", "en")[n % 3], outcome=outcome, end_status=end))  # fmt: skip
        db.add_all([UssdStep(session_id=session_id, seq=0, user_input="", screen="CON Sira", server_ms=1.0),
                    UssdStep(session_id=session_id, seq=1, user_input="", screen="CON Sira", server_ms=1.0)])  # fmt: skip
    sample = db.scalars(select(OutboundSms)).first()
    for n, (status, delivery) in enumerate(zip(list(SmsStatus), [*DELIVERY_RANK, None], strict=False)):
        db.add(OutboundSms(to_e164=sample.to_e164, to_hash=sample.to_hash, sender="SIRA", body="x", purpose=(
            "provider_help", "provider_reply", "returnee_reply", "returnee_erased", "returnee_feedback", "provider_reminder")[n],
            status=status, delivery_status=delivery, segments=1))  # fmt: skip
    db.add(OutboundSms(to_e164=sample.to_e164, to_hash=sample.to_hash, sender="INFO", body="x",
                       purpose="returnee_follow_up", status=SmsStatus.PENDING, segments=1))  # fmt: skip
    handled = ["accept", "decline", "close", "help", "status", "stop", "start", "erase", "feedback", "unknown",
               "unknown_code", "not_assigned", "illegal_transition", "provider_help", "rate_limited", "erased",
               "follow_up", "follow_up_help"]  # fmt: skip
    for n, outcome in enumerate(handled):
        db.add(InboundSms(gateway_id=f"labels-{n}", from_e164=sample.to_e164, from_hash=sample.to_hash, to="7472",
                          text="OK", sent_at=utcnow(), sender_kind=("provider", "returnee")[n % 2], handled_as=outcome))  # fmt: skip
    admin = make_user(db, "admin@example.org", Role.ADMIN)
    for role in (Role.COORDINATOR, Role.VIEWER):
        make_user(db, f"{role.value}@example.org", role)
    make_user(db, "focal@example.org", Role.PROVIDER, provider(db, "anpe").id)
    audit(db, admin.id, "user.role", "user", admin.id, before="viewer", after="admin", provider_id=None)
    audit(db, None, "login.failed", locked=False)
    audit(db, admin.id, "provider.update", "provider", 1, fields=["kind", "categories"])
    audit(db, admin.id, "export", "referrals", None, status="sent", category="jobs")
    audit(db, None, "user.create", "user", admin.id, role="coordinator", via="cli")
    closed = db.scalar(select(Referral.code).where(Referral.status == Status.CLOSED))
    audit(db, admin.id, "referral.unflag", "referral", closed, flag=Flag.NO_ANSWER)
    db.commit()
    return seeded


def crawl(client: FlaskClient, start: str = "/admin/", limit: int = 120) -> dict[str, list[str]]:
    """Every admin page reachable by links from the start, with its visible texts."""
    seen: dict[str, list[str]] = {}
    todo = deque([start])
    while todo and len(seen) < limit:
        url = todo.popleft()
        if url in seen:
            continue
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        if response.status_code == 302:
            todo.append(response.headers["Location"])
            seen[url] = []
            continue
        if response.mimetype != "text/html":  # a download (CSV, the directory in HSDS), not a page
            seen[url] = []
            continue
        parser = VisibleText()
        parser.feed(response.text)
        seen[url] = parser.texts
        for link in parser.links:
            target = urljoin(url, link)
            parts = urlsplit(target)
            if parts.path.startswith("/admin/") and not any(s in parts.path for s in SKIPPED):
                todo.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return seen


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_no_admin_page_shows_a_stored_code(everything: Flask, db: Session, lang: str) -> None:
    client = login(everything.test_client(), "admin@example.org")
    client.set_cookie(LANG_COOKIE, lang, path="/admin")
    for code in [r.code for r in db.scalars(select(Referral))]:  # the views and actions audit themselves
        client.get(f"/admin/referrals/{code}")
    desk = db.scalar(select(Referral).where(Referral.provider_id.is_(None)))
    client.post(
        f"/admin/referrals/{desk.code}/reroute", data={"provider_id": "", "csrf_token": token(client)}
    )
    pages = crawl(client)
    assert {"/admin/audit", "/admin/sms?direction=in", "/admin/providers", "/admin/users"} <= set(pages)
    assert any(p.startswith("/admin/ussd/sessions/") for p in pages)
    assert any(p.startswith("/admin/returnees/") for p in pages), "returnees must be reached by links"
    # A code that reads the same as a word of the page's language ("sent" in English) cannot be told apart.
    words = set(sira(everything).admin_catalogs.messages[lang].values())
    raw = every_code(everything, db) - words
    found = []
    for url, texts in pages.items():
        for text in texts:
            pieces = {p for p in SEPARATORS.split(text) if p}
            bad = pieces & raw
            if bad or "whatever they asked" in text:
                found.append((url, text, sorted(bad)))
    assert not found, found[:20]


def test_the_french_admin_names_needs_and_kinds_in_french(everything: Flask, db: Session) -> None:
    client = login(everything.test_client(), "admin@example.org")
    page = client.get("/admin/providers").text
    assert "agence pour l&#39;emploi des jeunes" in page and "youth employment agency" not in page
    assert "Emploi et formation" in page and "Jobs and training" not in page
    listing = client.get("/admin/referrals").text
    assert "Protection de l&#39;enfance" in listing and "minors" not in listing


def test_a_focal_point_reads_no_stored_code_either(everything: Flask, db: Session) -> None:
    """On its own referrals' timelines too (its answers, the system's reminders and re-routes)."""
    closed = db.scalar(select(Referral).where(Referral.status == Status.CLOSED))
    focal = db.scalar(select(User).where(User.email == "focal@example.org"))
    focal.provider_id = closed.provider_id
    db.commit()
    pages = crawl(login(everything.test_client(), "focal@example.org"))
    assert f"/admin/referrals/{closed.code}" in pages
    raw = every_code(everything, db) - set(sira(everything).admin_catalogs.messages["fr"].values())
    found = [
        (url, t) for url, texts in pages.items() for t in texts if {p for p in SEPARATORS.split(t) if p} & raw
    ]
    assert not found, found[:20]
