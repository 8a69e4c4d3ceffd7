"""Fixtures on real services: Redis, SQLite and PostgreSQL (migrated with Alembic), a live server.

Every test that needs the database runs on both back-ends (the `app` fixture is parametrised).
Each test session gets its own PostgreSQL database and SQLite file; tables are emptied and the
test Redis database flushed between tests.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from alembic import command as alembic
from flask import Flask
from redis import Redis
from rq import Queue
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from werkzeug.serving import make_server

import models
from app import create_app
from cli import alembic_config
from config import load_settings
from gateway.emulator import orange as orange_emulator
from gateway.ussd import UssdReply, UssdStep
from infra import keys, queues
from infra.connection import worker_redis
from tests.gateway_helpers import CallbackReceiver, EmulatorProcess, start_emulator, start_receiver
from web.context import sira
from workers import context
from workers.runner import run_jobs

# `make test` runs the suite in two processes (pytest-xdist: gw0, gw1): each flushes Redis dbs of
# its own, 4 below the previous process's (15 and 13 for gw0, 11 and 9 for gw1).
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_BASE_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
_BASE, _DB = _BASE_URL.rsplit("/", 1) if _BASE_URL.rsplit("/", 1)[-1].isdigit() else (_BASE_URL, "0")
REDIS_DB = str(int(_DB) - 4 * WORKER)
REDIS_URL = f"{_BASE}/{REDIS_DB}"
# The benchmarks' smoke tests flush a Redis db of their own and refuse one other clients use (the
# tests' apps keep connections to REDIS_DB): another db, chosen by TEST_BENCH_REDIS_DB.
BENCH_REDIS_DB = str(int(os.environ.get("TEST_BENCH_REDIS_DB", "13")) - 4 * WORKER)
if min(int(REDIS_DB), int(BENCH_REDIS_DB)) < 0:
    raise pytest.UsageError(
        "TEST_REDIS_URL's and TEST_BENCH_REDIS_DB's dbs leave no room for this many workers"
    )
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("TEST_DATABASES", "sqlite,postgresql").split(",") if b]
PHONE_HASH_KEY = "test-phone-hash-key-0123456789abcdef"
SECRET_KEY = "test-secret"
# Our Orange number in tests and `make run` (scripts/run): +223 then 0, which no Malian line has.
ORANGE_SENDER = orange_emulator.local_sender()  # our number on the emulator's Orange face
# One fixed keyring for every test app and worker (kid "test", 32 bytes in base64url).
ENCRYPTION_KEYS = "test:c2lyYS10ZXN0LWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM"


# A test that uses one of these (directly or through another fixture) needs a process running:
# Redis, a database server (SQLite files come with PostgreSQL's in `database_urls`), the emulator.
PROCESS_FIXTURES = frozenset({"redis", "database_urls", "emulator"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what needs a process, so that `make check` (`-m "not process"`) runs only the rest."""
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.process)


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One migrated database per back-end for the whole test session."""
    urls: dict[str, str] = {}
    name = f"sira_test_{uuid.uuid4().hex[:8]}"
    admin = None
    if "sqlite" in BACKENDS:
        urls["sqlite"] = f"sqlite:///{tmp_path_factory.mktemp('db') / 'sira.db'}"
    if "postgresql" in BACKENDS:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls["postgresql"] = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    for url in urls.values():
        alembic.upgrade(alembic_config(url), "head")
    yield urls
    for url in urls.values():
        if url in _EMPTYING:
            _EMPTYING.pop(url).dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    client.flushdb()
    # A Redis that has run longer than any session; a test that flushes it again plays an outage.
    client.set(keys.REDIS_BORN, "0")
    yield client
    client.flushdb()
    client.close()


# One engine per test database for emptying it between tests: a new engine and connection per test
# cost ~30 ms on PostgreSQL. SQLite opens its file anew each time (a test may restore over it).
_EMPTYING: dict[str, Engine] = {}


def _empty_tables(url: str) -> None:
    if url not in _EMPTYING:
        pooling = {"poolclass": NullPool} if url.startswith("sqlite") else {"pool_pre_ping": True}
        _EMPTYING[url] = create_engine(url, **pooling)
    with _EMPTYING[url].begin() as conn:
        for table in reversed(models.Base.metadata.sorted_tables):
            conn.execute(table.delete())


def app_settings(database_url: str, **extra: object) -> dict[str, object]:
    return {
        "env": "testing",
        "database_url": database_url,
        "redis_url": REDIS_URL,
        "phone_hash_key": PHONE_HASH_KEY,
        "secret_key": SECRET_KEY,
        "encryption_keys": ENCRYPTION_KEYS,
        "orange_sender_address": ORANGE_SENDER,
        "raise_step_errors": True,  # a crash inside a USSD step fails the test, not a polite END
        **extra,
    }


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, database_urls: dict[str, str]) -> Iterator[str]:
    url = database_urls[backend]
    _empty_tables(url)
    yield url


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own with nothing in it, not even the schema (to migrate or restore
    into), on the test's back-end."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"sira_empty_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def app(database_url: str, redis: Redis) -> Flask:
    return create_app(app_settings(database_url))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """A session on the app's database, for assertions."""
    with sira(app).sessions() as session:
        yield session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The app served over real HTTP on a free loopback port, in a thread."""

    def __init__(self, app: Flask, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = make_server("127.0.0.1", self.port, app, threaded=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(5)


@pytest.fixture
def live_server(app: Flask, app_port: int) -> Iterator[LiveServer]:
    with LiveServer(app, app_port) as server:
        yield server


@pytest.fixture(scope="session")
def app_port() -> int:
    """One port for the app across the session, so a session-wide emulator can call it back."""
    return free_port()


class Phone:
    """A handset dialling the service over HTTP, as Africa's Talking would relay it."""

    def __init__(self, base_url: str, number: str = "+22370000001", service_code: str = "*384*7472#") -> None:
        self.base_url, self.number, self.service_code = base_url, number, service_code
        self.session_id = ""
        self.history: list[str] = []
        self.http = requests.Session()

    def dial(self, dial_through: str = "") -> str:
        self.session_id = f"ATUid_{uuid.uuid4().hex}"
        self.history = [dial_through] if dial_through else []
        return self._post()

    def send(self, answer: str) -> str:
        self.history.append(answer)
        return self._post()

    def repeat(self) -> str:
        """The gateway re-sends the last request unchanged."""
        return self._post()

    def _post(self) -> str:
        response = self.http.post(
            self.base_url + "/ussd",
            data={"sessionId": self.session_id, "serviceCode": self.service_code,
                  "phoneNumber": self.number, "networkCode": "61001", "text": "*".join(self.history)},
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.text


class NeutralPhone(Phone):
    """A handset whose transport sends only the newest input, as an operator's SMPP gateway does:
    it calls the conversation every USSD transport shares, with the neutral step such a transport
    makes (`cumulative=False`, a dial marked `dialled`, each request its own `step_id`)."""

    def __init__(self, app: Flask, number: str = "+22370000001", service_code: str = "*384*7472#") -> None:
        super().__init__("", number, service_code)
        self.converse = sira(app).converse
        self.sent = 0
        self.last: UssdStep | None = None

    def dial(self, dial_through: str = "") -> str:
        self.session_id = f"smpp_{uuid.uuid4().hex}"
        self.history = [dial_through] if dial_through else []
        return self._deliver(dial_through, dialled=True)

    def send(self, answer: str) -> str:
        self.history.append(answer)
        return self._deliver(answer, dialled=False)

    def repeat(self) -> str:
        assert self.last is not None
        return self._render(self.converse(self.last))

    def _deliver(self, text: str, dialled: bool) -> str:
        self.sent += 1
        self.last = UssdStep(self.session_id, self.number, self.service_code, text, cumulative=False,
                             network="61001", transport="smpp", dialled=dialled,
                             step_id=str(self.sent))  # fmt: skip
        return self._render(self.converse(self.last))

    @staticmethod
    def _render(reply: UssdReply) -> str:
        return ("END " if reply.end else "CON ") + reply.text


TRANSPORTS = ["at", "smpp"]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each USSD journey runs over AT's webhook and over a transport that sends no history."""
    return request.param


@pytest.fixture
def phone(transport: str, live_server: LiveServer, app: Flask) -> Phone:
    return Phone(live_server.url) if transport == "at" else NeutralPhone(app)


ROOT = Path(__file__).resolve().parent.parent


def redis_dump(redis: Redis) -> bytes:
    """Every key and value in the test Redis database, for searching for personal data."""
    readers = {
        "string": lambda k: [redis.get(k)],
        "hash": lambda k: [*redis.hgetall(k).keys(), *redis.hgetall(k).values()],
        "list": lambda k: redis.lrange(k, 0, -1),
        "set": lambda k: list(redis.smembers(k)),
        "zset": lambda k: redis.zrange(k, 0, -1),
        "stream": lambda k: [str(redis.xrange(k)).encode()],
    }
    parts: list[bytes] = []
    for key in redis.keys("*"):
        parts.append(key)
        parts += [
            v if isinstance(v, bytes) else str(v).encode()
            for v in readers.get(redis.type(key).decode(), lambda k: [])(key)
        ]
    return b"\n".join(parts)


@pytest.fixture(scope="session")
def emulator(app_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    emulator = start_emulator(f"http://127.0.0.1:{app_port}", tmp_path_factory.mktemp("emu") / "emulator.log")
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    """A stand-in for Sira's callbacks that records what a gateway posts (the adapters' tests)."""
    receiver = start_receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def emulator_to_receiver(
    receiver: CallbackReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmulatorProcess]:
    """The emulator as its own process, calling back `receiver` instead of Sira."""
    emulator = start_emulator(receiver.url, tmp_path_factory.mktemp("emulator") / "emulator.log")
    yield emulator
    emulator.stop()


@pytest.fixture
def clean_emulator(emulator_to_receiver: EmulatorProcess, receiver: CallbackReceiver) -> None:
    """Each test starts with no message, fault or callback left by another."""
    assert emulator_to_receiver.post("/reset").status_code == 204
    receiver.clear()


@pytest.fixture
def gateway(emulator: EmulatorProcess) -> EmulatorProcess:
    emulator.post("/reset")
    return emulator


def worker_environ(
    database_url: str, gateway_url: str = "http://127.0.0.1:1", **extra: object
) -> dict[str, str]:
    """A worker's environment: the test app's own settings, each as its variable, plus the gateway
    and retries with no wait (production reads its settings from the environment too)."""
    settings = app_settings(database_url, at_api_url=gateway_url, sms_retry_intervals="0,0,0", **extra)
    return {name.upper(): str(value) for name, value in settings.items()}


def run_worker(
    database_url: str,
    gateway_url: str = "http://127.0.0.1:1",
    *,
    logging_level: str = "WARNING",
    before: Callable[[Redis], object] | None = None,
    **extra: object,
) -> None:
    """Run the queued jobs as `flask --app app worker --burst` does (`workers.runner.run_jobs`: RQ's
    SimpleWorker, no fork), in the test process, with the settings (`extra` as the test app's) in
    the environment and Redis reached as the command reaches it (through Sentinel if set).
    `before` may queue jobs first on that connection, as the worker's cron would.

    `tests/test_worker_process.py` starts the worker as its own process, exactly as the Procfile does.
    """
    with environment(worker_environ(database_url, gateway_url, **extra)):
        settings = load_settings()
        sentinels, master = settings.sentinel_addresses, settings.redis_sentinel_master
        with worker_redis(settings.redis_url, sentinels, master) as redis:
            if before is not None:
                before(redis)
            run_jobs(redis, settings, burst=True, logging_level=logging_level)


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """The process environment with `values` set, as a process started with them would read it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def fresh_worker_process() -> Iterator[None]:
    """The test starts as a newly started worker would: no gateway (hence no Orange token) cached."""
    context._contexts.clear()
    yield
    context._contexts.clear()


def flush_transcripts(database_url: str) -> None:
    """Run the transcript flush as the worker's cron would: an RQ job on a real worker."""
    with Redis.from_url(REDIS_URL) as redis:
        Queue(queues.DEFAULT, connection=redis).enqueue("workers.transcripts.flush_steps")
    run_worker(database_url)
