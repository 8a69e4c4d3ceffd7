"""Gunicorn settings for `web`: fail at start-up, with one clear line, if a service is down."""

import gc
import os

from web.context import sira

# BIND: one address, or several comma-separated (a pool of a second machine listens on its private
# address for the front's nginx, and on 127.0.0.1 for deploy/upgrade.sh's health check).
bind = [
    address.strip()
    for address in os.environ.get("BIND", "127.0.0.1:" + os.environ.get("PORT", "5000")).split(",")
]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = 30
accesslog = None


def on_starting(server):
    from app import create_app
    from infra.health import ServiceDown, require_services

    app = create_app()
    try:
        require_services(sira(app).sessions, sira(app).redis)
    except ServiceDown as exc:
        server.log.error("Sira cannot start: %s", exc)
        raise SystemExit(3) from None


def child_exit(server, worker):
    """A web process ended: prometheus_client drops its live files (its counters stay summed)."""
    from infra.metrics import process_exited

    process_exited(worker.pid)


def post_worker_init(worker):
    """The app is loaded: its objects (modules, catalogs, SQLAlchemy's mappers, some 150,000 of
    them) will live as long as the process, so the cyclic GC stops walking them. Each of its full
    collections otherwise walked them all while holding the GIL, stalling every thread of the
    worker for 100-300 ms on a busy 2-core machine: the p99 spikes of issue #15 (bench/README.md)."""
    gc.collect()
    gc.freeze()
