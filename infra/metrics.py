"""Sira's Prometheus metrics: every name is declared here once, and counted where it happens.

Counters and histograms live in this process (or, under gunicorn and beside the worker, in the
files of PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads when that variable is set
before it is imported); figures that are a state rather than an event (queue depth, outbox
backlog, spool size) are read at scrape time by `web/metrics.py`. No label ever holds a phone
number, a name or a session id: labels are drawn from small fixed sets.
"""

from __future__ import annotations

import functools
import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.registry import REGISTRY, Collector

# Step latency buckets (seconds): a gateway gives a screen a few seconds at most.
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

USSD_STEP_SECONDS = Histogram(
    "sira_ussd_step_seconds",
    "Time to answer one USSD step, by transport (at, smpp) and outcome (continue, end, unavailable, refused)",
    ("transport", "outcome"),
    buckets=STEP_BUCKETS,
)
USSD_SCREENS = Counter(
    "sira_ussd_screen_steps",
    "USSD steps by the screen they left the session on: the drop-off funnel",
    ("screen",),
)
SMS_SENDS = Counter(
    "sira_sms_sends",
    "Send attempts of outbox messages, by route (the SMS gateway) and the gateway's outcome",
    ("route", "outcome"),
)
SMS_SEND_SECONDS = Histogram(
    "sira_sms_send_seconds",
    "Time the gateway took to answer one send, by route: a worker sends one message at a time",
    ("route",),
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SMPP_PDUS = Counter(
    "sira_smpp_pdus",
    "USSD PDUs the SMPP connector received, by link and fate: step (answered), repeat (delivered again,"
    " acknowledged only), nacked (not a USSD step), refused, failed, left (at a stop, for redelivery)",
    ("link", "outcome"),
)
SMPP_REPLIES = Counter(
    "sira_smpp_replies",
    "Screens the SMPP connector sent, by link and the gateway's answer: accepted, throttled (sent again),"
    " lost (the bind died first; sent again), refused, late (past the reply time-out, not sent)",
    ("link", "outcome"),
)
DEADLINE_ACTIONS = Counter(
    "sira_deadline_actions",
    "Referral deadlines acted on: reminders sent to providers, referrals expired and re-routed",
    ("action",),
)
FOLLOW_UP_ACTIONS = Counter(
    "sira_follow_up_actions",
    "Follow-ups of outcomes acted on by the cron: questions asked to returnees, questions closed as no answer",
    ("action",),
)
# Labelled, so that a process that never fails writes no file for them (and that an importing
# process does not touch PROMETHEUS_MULTIPROC_DIR before config/ has checked it).
REDIS_ERRORS = Counter(
    "sira_redis_errors", "Redis calls that failed, by kind (connect, read: lost or timed out)", ("kind",)
)
DATABASE_ERRORS = Counter(
    "sira_database_errors", "Database calls that failed, by kind (connect, disconnect, statement)", ("kind",)
)


def multiprocess_dir() -> str | None:
    """Where the processes of this machine write their counters, if they share them: the
    directory prometheus_client itself chose at import (config/settings.py checks it is writable)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition(*collectors: Collector) -> bytes:
    """The text Prometheus scrapes: this machine's counters (every process's, in multiprocess
    mode) and `collectors`, read now."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory:
        multiprocess.MultiProcessCollector(registry, path=directory)
        for collector in collectors:
            registry.register(collector)
        return generate_latest(registry)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(REGISTRY) + generate_latest(registry)


def process_exited(pid: int) -> None:
    """Gunicorn's child_exit: drop the live-gauge files of a dead web process (counters stay)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


def observe_step(transport: str, outcome: str, screen: str | None, seconds: float) -> None:
    """Count one USSD step: its latency, and the screen it left the session on (if it got that far)."""
    _step_seconds(transport, outcome).observe(seconds)
    if screen is not None:
        _screen_steps(screen).inc()


# A step's labels come from small fixed sets (transports, outcomes, declared screens): each child is
# looked up once, not on every step (`labels()` checks, converts and locks each time).
@functools.cache
def _step_seconds(transport: str, outcome: str) -> Histogram:
    return USSD_STEP_SECONDS.labels(transport, outcome)


@functools.cache
def _screen_steps(screen: str) -> Counter:
    return USSD_SCREENS.labels(screen)
