"""The gateway fails: errors, a hang, refusals per recipient. Sends back off, then die visibly.

A real worker process sends through the emulator, whose /faults makes it answer 500, hang, or
refuse a recipient. Nothing is lost silently: a message is either sent or `dead` in the SMS log,
where staff can send it back to the outbox.
"""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask
from sqlalchemy import select

from models import AuditEntry, OutboundSms, SmsStatus
from models.admin import Role, User
from tests.conftest import LiveServer, Phone
from tests.faults.conftest import FAST, Stage, deliveries, outbox
from tests.gateway_helpers import EmulatorProcess, fresh_number, wait_for
from tests.journeys import ask_for_help
from web.context import sira

pytestmark = pytest.mark.faults

PASSWORD = "correct horse battery"


def statuses(app: Flask) -> list[str]:
    return [row.status for row in outbox(app)]


def signed_in(app: Flask, role: Role):
    with sira(app).sessions() as session:
        user = User(email=f"{role.value}@example.org", role=role)
        user.set_password(PASSWORD)
        session.add(user)
        session.commit()
    client = app.test_client()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/login").text).group(1)
    response = client.post(
        "/admin/login", data={"email": user.email, "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 302
    return client


def csrf(client, path: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text).group(1)


def test_a_gateway_down_for_good_makes_messages_dead_then_staff_send_them_again(
    gateway: EmulatorProcess,
    stage: Stage,
    app_port: int,
    spawn_worker,
    figures,
) -> None:
    settings, app = stage.settings, stage.app
    gateway.post("/faults", json={"http_500_rate": 1})
    spawn_worker(settings)
    with LiveServer(app, app_port) as server:
        started = time.monotonic()
        ask_for_help(Phone(server.url, number=fresh_number()))
        wait_for(lambda: statuses(app) and set(statuses(app)) == {SmsStatus.DEAD}, timeout=30)
        to_dead = time.monotonic() - started
        rows = outbox(app)
        assert all(r.attempts == FAST["sms_max_attempts"] and r.gateway_status == "HTTP 500" for r in rows), [
            (r.attempts, r.last_error) for r in rows
        ]
        # RQ's retries wait 1 s each: four tries cannot all happen in under three seconds.
        assert to_dead >= sum(int(x) for x in FAST["sms_retry_intervals"].split(","))
        time.sleep(1.5)  # dead is final: no sweep queues it again
        assert all(r.attempts == FAST["sms_max_attempts"] for r in outbox(app))

        viewer = signed_in(app, Role.VIEWER)
        page = viewer.get("/admin/sms?status=attention").text
        assert page.count("abandonné") >= len(rows) and "Réessayer" not in page
        dead = rows[0]
        assert (
            viewer.post(
                f"/admin/sms/{dead.id}/retry", data={"csrf_token": csrf(viewer, "/admin/sms")}
            ).status_code
            == 403
        )

        gateway.post("/reset")  # the gateway is back
        coordinator = signed_in(app, Role.COORDINATOR)
        page = coordinator.get("/admin/sms?status=dead").text
        assert page.count("Réessayer") == len(rows)
        assert coordinator.post(f"/admin/sms/{dead.id}/retry").status_code == 400  # no CSRF token
        retried = time.monotonic()
        response = coordinator.post(
            f"/admin/sms/{dead.id}/retry", data={"csrf_token": csrf(coordinator, "/admin/sms")}
        )
        assert response.status_code == 302
        wait_for(lambda: deliveries(app, gateway)[dead.id] == 1, timeout=10)
        resend = time.monotonic() - retried
        again = coordinator.post(
            f"/admin/sms/{dead.id}/retry", data={"csrf_token": csrf(coordinator, "/admin/sms")}
        )
        assert again.status_code == 409  # sent now: nothing to retry
        unknown = coordinator.post(
            "/admin/sms/99999999/retry", data={"csrf_token": csrf(coordinator, "/admin/sms")}
        )
        assert unknown.status_code == 404
        time.sleep(1)
        counts = deliveries(app, gateway)
    with sira(app).sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "sms.retry")).all()
        assert [e.object_id for e in entries] == [str(dead.id)]
        assert session.get(OutboundSms, dead.id).status == SmsStatus.ACCEPTED
    assert counts == {**{r.id: 0 for r in rows}, dead.id: 1}
    figures.update(
        sms_in_outbox=len(rows), attempts_each=FAST["sms_max_attempts"], seconds_to_dead=round(to_dead, 1),
        sms_delivered=sum(counts.values()), duplicates=0, seconds_from_retry_to_sent=round(resend, 1),
    )  # fmt: skip


def test_a_hung_gateway_holds_a_send_no_longer_than_the_client_time_out(
    gateway: EmulatorProcess,
    stage: Stage,
    app_port: int,
    spawn_worker,
    figures,
) -> None:
    settings, app = stage.settings, stage.app
    gateway.post("/faults", json={"timeout_rate": 1, "timeout_seconds": 30})  # far beyond every time-out
    spawn_worker(settings)
    with LiveServer(app, app_port) as server:
        ask_for_help(Phone(server.url, number=fresh_number()))
        first = wait_for(lambda: next((r for r in outbox(app) if r.status == SmsStatus.SENDING), None), 20)
        claimed = time.monotonic()
        wait_for(lambda: next(r for r in outbox(app) if r.id == first.id).status != SmsStatus.SENDING, 10)
        held = time.monotonic() - claimed
        gateway.post("/reset")  # the hung requests never complete: the gateway came back without them
        started = time.monotonic()
        wait_for(lambda: set(statuses(app)) == {SmsStatus.ACCEPTED}, timeout=30)
        recovery = time.monotonic() - started
        time.sleep(1)
        counts = deliveries(app, gateway)
    row = next(r for r in outbox(app) if r.id == first.id)
    assert held < settings["sms_job_timeout_seconds"] and held >= settings["at_timeout_seconds"] * 0.9
    assert row.attempts >= 2
    assert all(n == 1 for n in counts.values()), counts
    figures.update(send_held_s=round(held, 2), at_timeout_s=settings["at_timeout_seconds"],
                   job_timeout_s=settings["sms_job_timeout_seconds"], sms_in_outbox=len(counts),
                   sms_delivered=sum(counts.values()), duplicates=0, recovery_s=round(recovery, 1))  # fmt: skip


def test_per_recipient_refusals_retry_or_fail_as_the_gateway_means_them(
    gateway: EmulatorProcess,
    stage: Stage,
    app_port: int,
    spawn_worker,
    figures,
) -> None:
    """GatewayError (501) is worth another try; InvalidPhoneNumber (403) is final, never retried."""
    settings, app = stage.settings, stage.app
    gateway.post("/faults", json={"reject_rate": 1, "reject_status": "GatewayError"})
    spawn_worker(settings)
    with LiveServer(app, app_port) as server:
        ask_for_help(Phone(server.url, number=fresh_number()))
        wait_for(lambda: any(r.attempts >= 1 and r.status == SmsStatus.PENDING for r in outbox(app)), 20)
        gateway.post("/faults", json={"reject_rate": 0})
        wait_for(lambda: set(statuses(app)) == {SmsStatus.ACCEPTED}, timeout=20)
        retried = outbox(app)
        gateway.post("/faults", json={"reject_rate": 1, "reject_status": "InvalidPhoneNumber"})
        ask_for_help(Phone(server.url, number=fresh_number()))
        wait_for(lambda: len(statuses(app)) == 4 and SmsStatus.FAILED in statuses(app), timeout=20)
        time.sleep(1.5)
        refused = [r for r in outbox(app) if r.status == SmsStatus.FAILED]
    assert all(r.attempts >= 2 and r.last_error is None for r in retried if r.attempts > 1)
    assert refused and all(
        r.attempts == 1 and "InvalidPhoneNumber" in (r.gateway_status or "") for r in refused
    )
    figures.update(
        retried_then_sent=sum(1 for r in retried if r.attempts > 1), refused_for_good=len(refused),
        attempts_of_refused=[r.attempts for r in refused],
    )  # fmt: skip
