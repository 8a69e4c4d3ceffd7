"""`/metrics` moves with real traffic: a USSD journey through the webhook over HTTP, then a real
SimpleWorker (as in production) sending its SMS through the emulator; and only the configured
networks may read it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from app import create_app
from config import ConfigError, load_settings
from models import OutboundSms
from tests.conftest import (
    LiveServer,
    Phone,
    app_settings,
)
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, ask_for_help, code_in, run_worker, seeded_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


pytestmark = pytest.mark.usefixtures("fresh_worker_process")


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


def scrape(server: LiveServer) -> Samples:
    response = requests.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_a_referral_moves_the_funnel_the_queue_the_outbox_and_the_sms_counters(
    live_server: LiveServer, gateway: EmulatorProcess, database_url: str, db
) -> None:
    before = scrape(live_server)
    reply = ask_for_help(Phone(live_server.url, number=RETURNEE))
    code_in(reply)  # the journey ended on a referral
    during = scrape(live_server)

    steps = 12  # the dial and eleven answers
    count = "sira_ussd_step_seconds_count"
    moved = value(during, count, transport="at", outcome="continue") - value(
        before, count, transport="at", outcome="continue"
    )
    ended = value(during, count, transport="at", outcome="end") - value(
        before, count, transport="at", outcome="end"
    )
    assert (moved, ended) == (steps - 1, 1)
    funnel = {
        dict(labels)["screen"]: n - before.get((name, labels), 0.0)
        for (name, labels), n in during.items()
        if name == "sira_ussd_screen_steps_total"
    }
    assert sum(funnel.values()) == steps
    assert len([screen for screen, n in funnel.items() if n]) >= 8  # each screen of the way is counted
    messages = db.query(OutboundSms).count()
    assert messages >= 2  # the provider's alert and the returnee's confirmation
    assert value(during, "sira_outbox_messages", status="pending") == messages
    assert value(during, "sira_queue_jobs", queue="sms") == messages
    assert value(during, "sira_queue_oldest_job_seconds", queue="sms") >= 0
    assert value(during, "sira_database_up") == value(during, "sira_redis_up") == 1

    run_worker(database_url, gateway)
    after = scrape(live_server)
    accepted = value(after, "sira_sms_sends_total", route="africastalking", outcome="accepted")
    assert (
        accepted - value(during, "sira_sms_sends_total", route="africastalking", outcome="accepted")
        == messages
    )
    sends = "sira_sms_send_seconds_count"
    assert (
        value(after, sends, route="africastalking") - value(during, sends, route="africastalking") == messages
    )
    assert value(after, "sira_outbox_messages", status="pending") == 0
    assert value(after, "sira_queue_jobs", queue="sms") == 0
    assert value(after, "sira_spool_records") == 0


@pytest.mark.parametrize("networks", ["10.0.0.0/8", ""])
def test_metrics_are_a_404_outside_the_allowed_networks(
    database_url: str, redis: Redis, gateway: EmulatorProcess, networks: str
) -> None:
    app = create_app(app_settings(database_url, metrics_allowed_networks=networks))
    response = app.test_client().get("/metrics")
    assert response.status_code == 404
    assert b"sira_" not in response.data


def test_metrics_forwarded_by_an_untrusted_proxy_on_loopback_are_a_404(
    database_url: str, redis: Redis
) -> None:
    """nginx on the same machine proxying everything: its address is loopback, the client's is not."""
    client = create_app(app_settings(database_url)).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    behind_nginx = create_app(app_settings(database_url, trusted_proxies=1)).test_client()
    assert behind_nginx.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert behind_nginx.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_a_malformed_metrics_network_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match="METRICS_ALLOWED_NETWORKS"):
        load_settings({"METRICS_ALLOWED_NETWORKS": "10.0.0.0/33"})


WRITER = """
from infra.metrics import SMS_SENDS, observe_step
SMS_SENDS.labels("orange", "accepted").inc(3)
observe_step("smpp", "continue", "need", 0.02)
"""
READER = """
import sys
from app import create_app
from tests.conftest import app_settings
response = create_app(app_settings(sys.argv[1])).test_client().get("/metrics")
assert response.status_code == 200, response.status_code
sys.stdout.write(response.get_data(as_text=True))
"""


def test_under_gunicorn_and_beside_the_worker_every_process_counters_are_summed(
    database_url: str, redis: Redis, tmp_path
) -> None:
    """PROMETHEUS_MULTIPROC_DIR: two processes count (a worker, the SMPP connector), a third serves
    /metrics (a web process), and the scrape adds them up, with the scrape-time gauges once."""
    import subprocess
    import sys

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parent.parent
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WRITER], env=env, cwd=root, check=True, timeout=60)
    out = subprocess.run(
        [sys.executable, "-c", READER, database_url], env=env, cwd=root, check=True, timeout=60,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(out)
        for sample in family.samples
    }
    assert value(samples, "sira_sms_sends_total", route="orange", outcome="accepted") == 6
    assert value(samples, "sira_ussd_screen_steps_total", screen="need") == 2
    assert value(samples, "sira_ussd_step_seconds_count", transport="smpp", outcome="continue") == 2
    assert out.count("# TYPE sira_queue_jobs gauge") == 1
    assert value(samples, "sira_redis_up") == 1


def test_a_redis_and_a_database_that_do_not_answer_are_counted_and_reported_down(
    database_url: str, redis: Redis
) -> None:
    """Each step still gets its polite answer; the scrape says which service failed, and how often."""
    app = create_app(
        app_settings("postgresql+psycopg://sira@127.0.0.1:1/sira", redis_url="redis://127.0.0.1:1/0")
    )
    client = app.test_client()
    before = scrape_client(client)
    form = {"sessionId": "down-1", "serviceCode": "*384*7472#", "phoneNumber": RETURNEE, "text": ""}
    reply = client.post("/ussd", data=form)
    assert reply.status_code == 200 and reply.text.startswith("END ")
    after = scrape_client(client)
    assert value(after, "sira_redis_errors_total", kind="connect") > value(
        before, "sira_redis_errors_total", kind="connect"
    )
    assert value(after, "sira_database_errors_total", kind="connect") > value(
        before, "sira_database_errors_total", kind="connect"
    )
    assert value(after, "sira_redis_up") == value(after, "sira_database_up") == 0
    assert value(after, "sira_ussd_step_seconds_count", transport="at", outcome="unavailable") > value(
        before, "sira_ussd_step_seconds_count", transport="at", outcome="unavailable"
    )


def scrape_client(client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
