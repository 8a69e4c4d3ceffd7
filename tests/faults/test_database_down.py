"""The database is unreachable: USSD says so within seconds, and no gateway callback is lost.

On PostgreSQL the database sits behind a TCP relay that the test cuts (open connections reset,
new ones refused) and restores on the same port, for the app and the worker alike; a port that
accepts and never answers stands for a host that hangs. On SQLite, "unreachable" is a database
file whose directory is gone: the app pointed at it is down, the worker (started when the
outage ends) is on the real file.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import make_url, select, update

from app import create_app
from flows.i18n import DEFAULT_LANGUAGE, Catalogs
from flows.text import to_ussd
from models import InboundSms, OutboundSms, Referral, Returnee, SmsStatus
from models.phone import phone_hash
from services.converse import UNAVAILABLE
from tests.conftest import PHONE_HASH_KEY, LiveServer, Phone
from tests.faults.conftest import (
    Blackhole,
    DatabaseLink,
    RedisProcess,
    deliveries,
    fault_settings,
    outbox,
)
from tests.gateway_helpers import EmulatorProcess, free_port, fresh_number, wait_for
from tests.journeys import app_with_directory, ask_for_help, code_in, inbox, send_from_phone
from web.context import sira

pytestmark = pytest.mark.faults

APEJ = "+22370000002"  # the provider alerted for a job in Bamako (seed/directory.hsds.json)
ANSWER_WITHIN = 3.0


def unavailable() -> str:
    return "END " + to_ussd(Catalogs.load().gettext(DEFAULT_LANGUAGE, UNAVAILABLE))


def unreachable_urls(backend: str, database_url: str, tmp_path: Path, blackhole: Blackhole) -> dict[str, str]:
    if backend == "sqlite":
        return {"missing file": f"sqlite:///{tmp_path / 'gone' / 'sira.db'}"}
    url = make_url(database_url)
    return {
        "connection refused": url.set(port=free_port()).render_as_string(hide_password=False),
        "host hangs": url.set(port=blackhole.port).render_as_string(hide_password=False),
    }


def test_ussd_answers_service_unavailable_quickly_when_the_database_is_unreachable(
    backend: str, database_url: str, private_redis: RedisProcess, gateway: EmulatorProcess, tmp_path: Path,
    figures,
) -> None:  # fmt: skip
    blackhole = Blackhole()
    try:
        seconds = {}
        for name, url in unreachable_urls(backend, database_url, tmp_path, blackhole).items():
            app = create_app(fault_settings(url, private_redis.url, gateway, tmp_path / "spool"))
            with LiveServer(app) as server:
                phone = Phone(server.url, number=fresh_number())
                started = time.perf_counter()
                reply = phone.dial()
                seconds[name] = round(time.perf_counter() - started, 2)
            assert reply == unavailable(), reply
            assert seconds[name] < ANSWER_WITHIN, seconds
    finally:
        blackhole.close()
    figures.update({f"reply_s_{name.replace(' ', '_')}": s for name, s in seconds.items()})


def test_callbacks_received_while_the_database_is_down_are_spooled_sealed_and_replayed_once(
    backend: str,
    database_url: str,
    private_redis: RedisProcess,
    gateway: EmulatorProcess,
    app_port: int,
    spawn_worker,
    tmp_path: Path,
    figures,
) -> None:
    spool = tmp_path / "spool"
    link = DatabaseLink()
    if backend == "postgresql":
        link.restore()
        up_url = down_url = link.url_for(database_url)
    else:
        up_url, down_url = database_url, f"sqlite:///{tmp_path / 'gone' / 'sira.db'}"
    up = fault_settings(up_url, private_redis.url, gateway, spool)
    app = app_with_directory(up)
    worker = spawn_worker(up)
    with LiveServer(app, app_port) as server:
        returnee = fresh_number()
        code = code_in(ask_for_help(Phone(server.url, number=returnee)))
        wait_for(lambda: all(r.delivery_status == "Success" for r in outbox(app)) and outbox(app), timeout=20)
    alert = next(r for r in outbox(app) if r.to_e164 == APEJ)
    with sira(app).sessions() as session:  # its report is still on its way
        session.execute(update(OutboundSms).where(OutboundSms.id == alert.id).values(delivery_status=None))
        session.commit()

    # The database goes away.
    if backend == "postgresql":
        link.cut()
    else:
        worker.stop()
    down_app = app if backend == "postgresql" else create_app({**up, "database_url": down_url})
    with LiveServer(down_app, app_port) as server:
        started = time.perf_counter()
        assert Phone(server.url, number=fresh_number()).dial() == unavailable()
        ussd_seconds = time.perf_counter() - started
        accepted = send_from_phone(gateway, APEJ, f"OK {code}")
        report = requests.post(
            server.url + "/sms/delivery", data={"id": alert.gateway_id, "status": "Success"}, timeout=10
        )
        repeated = requests.post(  # the gateway sends the same report twice
            server.url + "/sms/delivery", data={"id": alert.gateway_id, "status": "Success"}, timeout=10
        )
        quitter = fresh_number()
        optout = requests.post(server.url + "/sms/optout", data={"phoneNumber": quitter}, timeout=10)
        time.sleep(1.5)  # the worker's replay tries (and fails) meanwhile on PostgreSQL
    assert "'status_code': 200" in accepted and "ok: spooled" in accepted, accepted
    assert report.status_code == repeated.status_code == optout.status_code == 200
    assert report.text == optout.text == "ok: spooled"
    spooled = sorted(spool.glob("*.rec"))
    assert len(spooled) == 4
    raw = b"".join(p.read_bytes() for p in spooled)
    assert not any(n.encode() in raw for n in ("70000002", returnee[4:], quitter[4:], code))
    copies = tmp_path / "copies"
    copies.mkdir()
    for path in spooled:
        shutil.copy(path, copies / path.name)

    # The database is back.
    back = time.monotonic()
    if backend == "postgresql":
        link.restore()
    else:
        spawn_worker(up)
    with LiveServer(app, app_port):
        wait_for(lambda: not list(spool.glob("*.rec")), timeout=20)
        replayed = time.monotonic() - back
        wait_for(lambda: len(inbox(gateway, APEJ)) == 2 and len(inbox(gateway, returnee)) == 2, timeout=20)
        recovery = time.monotonic() - back
        for path in copies.iterdir():  # a replay that crashed before deleting its files runs again
            shutil.copy(path, spool / path.name)
        wait_for(lambda: not list(spool.glob("*.rec")), timeout=20)
        time.sleep(1.5)
        counts = deliveries(app, gateway)
    with sira(app).sessions() as session:
        referral = session.scalar(select(Referral).where(Referral.code == code))
        inbound = session.scalars(select(InboundSms)).all()
        report_status = session.get(OutboundSms, alert.id).delivery_status
        rows = session.scalars(select(OutboundSms)).all()
        opted_out = session.scalar(
            select(Returnee.opted_out_at).where(Returnee.phone_hash == phone_hash(quitter, PHONE_HASH_KEY))
        )
    figures.update(
        ussd_unavailable_reply_s=round(ussd_seconds, 2), callbacks_spooled=len(spooled),
        replayed_within_s=round(replayed, 1), recovery_s=round(recovery, 1),
        sms_in_outbox=len(rows), sms_delivered=sum(counts.values()),
        duplicates=sum(n - 1 for n in counts.values() if n > 1),
    )  # fmt: skip
    assert ussd_seconds < ANSWER_WITHIN
    assert referral.status == "accepted" and len(inbound) == 1 and inbound[0].handled_as
    assert report_status == "Success" and opted_out is not None
    assert all(r.status == SmsStatus.ACCEPTED for r in rows) and all(n == 1 for n in counts.values()), counts
    assert not (spool / "rejected").exists()
    link.cut()
