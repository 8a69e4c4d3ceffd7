"""USSD sessions and the SMS log in the admin: filters, paging in the database, masking, roles."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, Role
from models.messaging import InboundSms, OutboundSms, SmsStatus
from models.phone import masked, phone_hash
from models.ussd import UssdSession, UssdStep
from tests.conftest import PHONE_HASH_KEY, flush_transcripts, redis_dump
from tests.test_admin_access import token
from tests.test_admin_referrals import provider, seeded, signed_in  # noqa: F401  (seeded is a fixture)
from web.admin.paging import Page
from web.context import sira

PHONE = "+22370000001"
OTHER = "+22370000002"
GOOD = {"sessionId": "ATUid_1", "serviceCode": "*384*7472#", "phoneNumber": PHONE,
        "networkCode": "61001", "text": ""}  # fmt: skip
DAY = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)


def ussd_session(
    db: Session,
    session_id: str,
    phone: str = PHONE,
    started_at: datetime = DAY,
    outcome: str | None = None,
    steps: tuple[tuple[str, str], ...] = (),
) -> UssdSession:
    row = UssdSession(session_id=session_id, phone_hash=phone_hash(phone, PHONE_HASH_KEY),
                      service_code="*384*7472#", network_code="61001", started_at=started_at, outcome=outcome)  # fmt: skip
    row.steps = [
        UssdStep(
            seq=n, user_input=typed, screen=screen, server_ms=12.5 + n, at=started_at + timedelta(seconds=n)
        )
        for n, (typed, screen) in enumerate(steps)
    ]
    db.add(row)
    db.commit()
    return row


def outbound(db: Session, to: str = PHONE, **kw: object) -> OutboundSms:
    values = {"body": "Votre demande AB12 est envoyée.", "purpose": "returnee_ack", "created_at": DAY} | kw
    sms = OutboundSms(to_e164=to, to_hash=phone_hash(to, PHONE_HASH_KEY), **values)
    db.add(sms)
    db.commit()
    return sms


@contextmanager
def statements_of(app: Flask) -> Iterator[list[str]]:
    """The SQL the app sends while the block runs."""
    statements: list[str] = []
    engine = sira(app).sessions.kw["bind"]

    def capture(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


# -- USSD sessions -------------------------------------------------------------------------------


def test_a_journey_through_the_webhook_reads_back_as_its_transcript(
    app: Flask, db: Session, redis: Redis, database_url: str
) -> None:
    ussd = app.test_client()
    replies = [ussd.post("/ussd", data={**GOOD, "text": text}).text for text in ("", "9", "9*7")]
    flush_transcripts(database_url)
    client = signed_in(app, db, Role.COORDINATOR)
    listing = client.get("/admin/ussd/sessions")
    assert listing.status_code == 200 and "ATUid_1" in listing.text
    assert PHONE not in listing.text
    page = client.get("/admin/ussd/sessions/ATUid_1")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    for reply in replies:
        assert reply.startswith("CON ")
        # Each screen, whole and preformatted, as the handset showed it (without CON/END).
        assert f'<pre class="screen">{html.escape(reply[4:])}</pre>' in page.text
    assert '<kbd class="input">9</kbd>' in page.text and '<kbd class="input">7</kbd>' in page.text
    steps = db.scalars(select(UssdStep).order_by(UssdStep.seq)).all()
    assert all(f"{s.server_ms:.1f} ms" in page.text for s in steps)
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "ussd.view"))
    row = db.scalar(select(UssdSession))
    assert (entry.object_type, entry.object_id) == ("ussd_session", str(row.id))
    assert entry.detail == {"session_id": "ATUid_1", "steps": 3, "masked": False}


def test_a_viewer_reads_transcripts_with_the_inputs_masked(app: Flask, db: Session) -> None:
    ussd_session(db, "ATUid_v", steps=(("", "CON Prénom ?"), ("Awa", "END Merci,\nà bientôt")), outcome="x")
    viewer = signed_in(app, db, Role.VIEWER)
    page = viewer.get("/admin/ussd/sessions/ATUid_v")
    assert page.status_code == 200
    assert "Awa" not in page.text and '<kbd class="input">•••</kbd>' in page.text
    assert '<pre class="screen">Merci,\nà bientôt</pre>' in page.text  # the line break kept
    assert "13.5 ms" in page.text
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "ussd.view"))
    assert entry.detail["masked"] is True
    admin = signed_in(app, db, Role.ADMIN)
    assert '<kbd class="input">Awa</kbd>' in admin.get("/admin/ussd/sessions/ATUid_v").text
    audit = admin.get("/admin/audit").text
    assert 'href="/admin/ussd/sessions/ATUid_v"' in audit and "Awa" not in audit


def test_an_unknown_session_is_a_404_and_strangers_go_to_login(app: Flask, db: Session) -> None:
    client = signed_in(app, db, Role.ADMIN)
    assert client.get("/admin/ussd/sessions/nope").status_code == 404
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "ussd.view")) is None
    anonymous = app.test_client()
    for path in ("/admin/ussd/sessions", "/admin/ussd/sessions/nope", "/admin/sms"):
        assert anonymous.get(path).headers["Location"].startswith("/admin/login")


def test_providers_find_neither_sessions_nor_messages(seeded: Flask, db: Session) -> None:  # noqa: F811
    ussd_session(db, "ATUid_p", steps=(("", "CON Menu"),))
    outbound(db)
    client = signed_in(seeded, db, Role.PROVIDER, provider(db, "anpe").id)
    for path in (
        "/admin/ussd/sessions",
        "/admin/ussd/sessions/ATUid_p",
        "/admin/sms",
        "/admin/sms?direction=in",
    ):
        assert client.get(path).status_code == 404, path
    csrf = token(client)
    assert client.post("/admin/ussd/sessions", data={"csrf_token": csrf, "phone": PHONE}).status_code == 404
    nav = client.get("/admin/referrals").text
    assert "/admin/ussd/sessions" not in nav and "/admin/sms" not in nav
    assert db.scalar(select(AuditEntry).where(AuditEntry.action == "ussd.view")) is None


def test_the_navigation_links_to_both_pages(app: Flask, db: Session) -> None:
    for role in (Role.ADMIN, Role.COORDINATOR, Role.VIEWER):
        nav = signed_in(app, db, role).get("/admin/referrals").text
        assert 'href="/admin/ussd/sessions"' in nav and 'href="/admin/sms"' in nav, role


def test_the_session_list_is_paginated_in_the_database_newest_first(
    app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [ussd_session(db, f"ATUid_{i}", started_at=DAY + timedelta(minutes=i)).session_id for i in range(5)]
    monkeypatch.setattr(Page, "SIZE", 2)
    client = signed_in(app, db, Role.VIEWER)
    with statements_of(app) as statements:
        pages = [client.get(f"/admin/ussd/sessions?page={n}").text for n in (1, 2, 3)]
    newest_first = ids[::-1]
    shown = [{i for i in ids if f">{i}<" in page} for page in pages]
    assert shown == [set(newest_first[0:2]), set(newest_first[2:4]), set(newest_first[4:])]
    assert pages[0].index(newest_first[0]) < pages[0].index(newest_first[1])
    assert "Suivante" in pages[1] and "Suivante" not in pages[2]
    listing = [
        s for s in statements if "FROM ussd_session" in s and "ORDER BY ussd_session.started_at DESC" in s
    ]
    assert len(listing) == 3 and all("LIMIT" in s and "OFFSET" in s for s in listing)


def test_the_session_list_filters_by_date_and_outcome(app: Flask, db: Session) -> None:
    ussd_session(db, "ATUid_early", started_at=DAY - timedelta(days=2), outcome="help.sent")
    ussd_session(db, "ATUid_day", started_at=DAY.replace(hour=23, minute=59), outcome="mydata.withdrawn")
    ussd_session(db, "ATUid_open", started_at=DAY + timedelta(days=1))
    client = signed_in(app, db, Role.COORDINATOR)

    def listed(query: str) -> set[str]:
        text = client.get(f"/admin/ussd/sessions?{query}").text
        return {s for s in ("ATUid_early", "ATUid_day", "ATUid_open") if f">{s}<" in text}

    assert listed("") == {"ATUid_early", "ATUid_day", "ATUid_open"}
    assert listed("from=2024-05-10&to=2024-05-10") == {"ATUid_day"}  # the whole of the last day
    assert listed("from=2024-05-09") == {"ATUid_day", "ATUid_open"}
    assert listed("to=2024-05-09") == {"ATUid_early"}
    assert listed("outcome=help.sent") == {"ATUid_early"}
    assert listed("outcome=none") == {"ATUid_open"}
    assert listed("outcome=bogus&from=garbage&ph=nothex&page=x") == {"ATUid_early", "ATUid_day", "ATUid_open"}
    form = client.get("/admin/ussd/sessions").text
    assert '<option value="help.sent">' in form and '<option value="mydata.withdrawn">' in form


def test_the_phone_filter_looks_up_the_hash_and_never_keeps_the_number(
    app: Flask, db: Session, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    ussd_session(db, "ATUid_mine", phone=PHONE, started_at=DAY)
    ussd_session(db, "ATUid_mine_old", phone=PHONE, started_at=DAY - timedelta(days=3))
    ussd_session(db, "ATUid_theirs", phone=OTHER, started_at=DAY)
    client = signed_in(app, db, Role.COORDINATOR)
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/admin/ussd/sessions",
        data={"csrf_token": token(client), "phone": " 70 00 00 01 ", "from": "", "to": "", "outcome": ""},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert "70000001" not in location and "70+00" not in location
    assert parse_qs(urlsplit(location).query) == {"ph": [phone_hash(PHONE, PHONE_HASH_KEY)]}
    page = client.get(location).text
    assert ">ATUid_mine<" in page and ">ATUid_mine_old<" in page and ">ATUid_theirs<" not in page
    assert "70000001" not in page and "70 00 00 01" not in page
    # The other filters are added without losing the number, unless it is dropped.
    kept = client.post(
        "/admin/ussd/sessions",
        data={"csrf_token": token(client), "from": "2024-05-10", "keep_phone": "1",
              "ph": phone_hash(PHONE, PHONE_HASH_KEY)},
    )  # fmt: skip
    page = client.get(kept.headers["Location"]).text
    assert ">ATUid_mine<" in page and ">ATUid_mine_old<" not in page and ">ATUid_theirs<" not in page
    dropped = client.post("/admin/ussd/sessions", data={"csrf_token": token(client), "from": "2024-05-10"})
    page = client.get(dropped.headers["Location"]).text
    assert ">ATUid_mine<" in page and ">ATUid_theirs<" in page
    # Nothing of the typed number anywhere: logs, Redis, the audit log.
    for digits in ("70000001", "70 00 00 01"):
        assert digits not in caplog.text
        assert digits.encode() not in redis_dump(redis)
        assert all(digits not in str(e.detail) for e in db.scalars(select(AuditEntry)))


def test_a_number_that_is_not_one_is_said_so_and_ignored(app: Flask, db: Session) -> None:
    ussd_session(db, "ATUid_mine")
    client = signed_in(app, db, Role.COORDINATOR)  # viewers do not filter by number at all
    response = client.post("/admin/ussd/sessions", data={"csrf_token": token(client), "phone": "hello"})
    assert "hello" not in response.headers["Location"]
    page = client.get(response.headers["Location"]).text
    assert "Numéro de téléphone invalide" in page and ">ATUid_mine<" in page
    assert client.post("/admin/ussd/sessions", data={"phone": PHONE}).status_code == 400  # no CSRF token


# -- SMS log -------------------------------------------------------------------------------------


def attention_outbox(db: Session) -> dict[str, OutboundSms]:
    return {
        "delivered": outbound(db, status=SmsStatus.ACCEPTED, segments=2, cost="XOF 30.0000",
                              delivery_status="Success", created_at=DAY),
        "undelivered": outbound(db, OTHER, status=SmsStatus.ACCEPTED, delivery_status="Failed",
                                delivery_reason="AbsentSubscriber", created_at=DAY + timedelta(minutes=1)),
        "held": outbound(db, status=SmsStatus.HELD, last_error="InsufficientBalance",
                         created_at=DAY + timedelta(minutes=2)),
        "failed": outbound(db, status=SmsStatus.FAILED, last_error="InvalidPhoneNumber",
                           created_at=DAY + timedelta(minutes=3)),
        "dead": outbound(db, status=SmsStatus.DEAD, last_error="gateway timeout",
                         created_at=DAY + timedelta(minutes=4)),
        "pending": outbound(db, status=SmsStatus.PENDING, created_at=DAY + timedelta(minutes=5)),
    }  # fmt: skip


def sms_rows(page: str) -> list[str]:
    """The messages' rows, after the table of SMS routes above them."""
    if 'class="routes"' in page:
        page = page[page.index("</table>", page.index('class="routes"')) :]
    return [row for row in page.split("<tr")[2:] if "<td" in row]


def test_staff_see_outgoing_messages_with_their_delivery_and_what_needs_attention(
    app: Flask, db: Session
) -> None:
    outbox = attention_outbox(db)
    client = signed_in(app, db, Role.COORDINATOR)
    page = client.get("/admin/sms").text
    rows = sms_rows(page)
    assert len(rows) == 6
    assert "pending" in rows[0].split(">")[0] and "delivered" not in rows[0]  # newest first
    delivered = rows[-1]
    assert PHONE in delivered and "Votre demande AB12 est envoyée." in delivered
    assert "<td>remis</td>" in delivered and "XOF 30.0000" in delivered and "<td>2</td>" in delivered
    assert "non remis (téléphone injoignable)" in page and "InsufficientBalance" in page
    assert OTHER in page

    def statuses(query: str) -> set[int]:
        text = client.get(f"/admin/sms?{query}").text
        return {sms.id for sms in outbox.values() if f"sms-{sms.status}" in text}

    needs = statuses("status=attention")
    attention_page = client.get("/admin/sms?status=attention").text
    assert len(sms_rows(attention_page)) == 3
    assert all(e in attention_page for e in ("InsufficientBalance", "InvalidPhoneNumber", "gateway timeout"))
    assert needs == {outbox["held"].id, outbox["failed"].id, outbox["dead"].id}
    for status in ("held", "failed", "dead"):
        only = client.get(f"/admin/sms?status={status}").text
        assert len(sms_rows(only)) == 1 and f"sms-{status}" in only
    assert len(sms_rows(client.get("/admin/sms?status=bogus").text)) == 6


def test_a_viewer_sees_masked_numbers_and_no_bodies(app: Flask, db: Session) -> None:
    outbound(db, body="Bonjour Awa, votre code est AB12")
    db.add(InboundSms(gateway_id="in-1", from_e164=OTHER, from_hash=phone_hash(OTHER, PHONE_HASH_KEY),
                      to="7472", text="STOP Moussa", sent_at=DAY, received_at=DAY, handled_as="unknown"))  # fmt: skip
    db.commit()
    viewer = signed_in(app, db, Role.VIEWER)
    out = viewer.get("/admin/sms").text
    assert masked(PHONE) in out and PHONE not in out and "Awa" not in out and "AB12" not in out
    incoming = viewer.get("/admin/sms?direction=in").text
    assert masked(OTHER) in incoming and OTHER not in incoming and "Moussa" not in incoming
    assert "non compris" in incoming and "7472" in incoming
    admin = signed_in(app, db, Role.ADMIN)
    assert PHONE in admin.get("/admin/sms").text and "Bonjour Awa" in admin.get("/admin/sms").text
    incoming = admin.get("/admin/sms?direction=in").text
    assert OTHER in incoming and "STOP Moussa" in incoming


def test_incoming_messages_are_listed_newest_first_and_the_sms_log_pages_in_the_database(
    app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        db.add(InboundSms(gateway_id=f"in-{i}", from_e164=PHONE, from_hash=phone_hash(PHONE, PHONE_HASH_KEY),
                          to="7472", text=f"message {i}", sent_at=DAY, received_at=DAY + timedelta(minutes=i)))  # fmt: skip
        outbound(db, body=f"sortant {i}", created_at=DAY + timedelta(minutes=i))
    db.commit()
    monkeypatch.setattr(Page, "SIZE", 2)
    client = signed_in(app, db, Role.COORDINATOR)
    with statements_of(app) as statements:
        incoming = [client.get(f"/admin/sms?direction=in&page={n}").text for n in (1, 2)]
        outgoing = [client.get(f"/admin/sms?status=pending&page={n}").text for n in (1, 2)]
    assert [[i for i in range(3) if f"message {i}" in p] for p in incoming] == [[1, 2], [0]]
    assert incoming[0].index("message 2") < incoming[0].index("message 1")
    assert (
        'href="/admin/sms?page=2&amp;direction=in"' in incoming[0] or "direction=in&amp;page=2" in incoming[0]
    )
    assert [[i for i in range(3) if f"sortant {i}" in p] for p in outgoing] == [[1, 2], [0]]
    assert "status=pending" in outgoing[0].split('class="pager"')[1]
    for table, order in (("inbound_sms", "received_at"), ("outbound_sms", "created_at")):
        listing = [s for s in statements if f"FROM {table}" in s and f"ORDER BY {table}.{order} DESC" in s]
        assert len(listing) == 2 and all("LIMIT" in s and "OFFSET" in s for s in listing), table
