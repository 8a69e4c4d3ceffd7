"""Plumbing for fault injection: a private Redis and real worker processes that tests may kill.

Nothing here is shared with other tests: each scenario starts its own `redis-server` on a free
port (no persistence, so a restart loses everything, as a crashed cache would) and its own
`flask --app app worker` processes, with intervals short enough that recovery takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import make_url, select

from models import OutboundSms
from tests.conftest import PHONE_HASH_KEY, ROOT, SECRET_KEY, app_settings
from tests.gateway_helpers import EmulatorProcess, free_port, wait_for
from tests.journeys import app_with_directory
from web.context import sira

# Short intervals so that each recovery path runs within seconds (see config/settings.py for each).
FAST = {
    "sms_retry_intervals": "1,1,1",
    "at_timeout_seconds": 2.0,
    "orange_timeout_seconds": 0.5,  # 4 calls of a send fit within the job time-out below
    "sms_job_timeout_seconds": 3,
    "sms_claim_lease_seconds": 4,
    "sms_max_attempts": 4,
    "outbox_sweep_seconds": 1,
    "worker_maintenance_seconds": 2,
    "spool_replay_seconds": 1,
    "deadline_check_seconds": 3600,
}


class RedisProcess:
    """`redis-server` on a free port, without persistence; stop and start it at will."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--logfile", str(self.log)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, timeout=10)

    def answers(self) -> bool:
        try:
            with Redis.from_url(self.url, socket_timeout=0.2, socket_connect_timeout=0.2) as client:
                return bool(client.ping())
        except Exception:
            return False

    def stop(self) -> None:
        """Kill it outright (SIGKILL): whatever it held is gone, as after a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()


@dataclass
class WorkerProcess:
    """`flask --app app worker`, exactly as the Procfile starts it."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "app", "worker"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def kill(self) -> None:
        """kill -9: no clean-up of any kind, as when the machine or the OOM killer takes it."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def fault_settings(
    database_url: str, redis_url: str, gateway: EmulatorProcess, spool_dir: Path, **extra: object
) -> dict[str, object]:
    settings = app_settings(database_url, **FAST, redis_url=redis_url, at_api_url=gateway.url,
                            spool_dir=str(spool_dir), **extra)  # fmt: skip
    assert settings["phone_hash_key"] == PHONE_HASH_KEY and settings["secret_key"] == SECRET_KEY
    return settings


@dataclass(frozen=True)
class Stage:
    """A scenario's usual set: its settings and the app, seeded, on them."""

    settings: dict[str, object]
    app: Flask


@pytest.fixture
def stage(database_url: str, private_redis: RedisProcess, gateway: EmulatorProcess, tmp_path: Path) -> Stage:
    """The usual scenario: a Redis of its own, the gateway emulator, a spool of its own, the sample directory."""
    settings = fault_settings(database_url, private_redis.url, gateway, tmp_path / "spool")
    return Stage(settings, app_with_directory(settings))


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, object]], WorkerProcess]]:
    """Start a worker process on the given settings; every one started is stopped at the end."""
    started: list[WorkerProcess] = []

    def spawn(settings: dict[str, object]) -> WorkerProcess:
        env = {**os.environ, **{name.upper(): str(value) for name, value in settings.items()}}
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        worker.stop()


def outbox(app: Flask) -> list[OutboundSms]:
    with sira(app).sessions() as session:
        return list(session.scalars(select(OutboundSms).order_by(OutboundSms.id)))


def deliveries(app: Flask, gateway: EmulatorProcess) -> dict[int, int]:
    """How many times the gateway carried each outbox row (matched on recipient and text)."""
    carried = gateway.get("/messages").json()
    return {
        row.id: sum(1 for m in carried if m["to"] == row.to_e164 and m["text"] == row.body)
        for row in outbox(app)
    }


class Figures(dict):
    """What a scenario observed; printed (run with -s to see it) and kept as JUnit properties."""


@pytest.fixture
def figures(request: pytest.FixtureRequest, record_property) -> Iterator[Figures]:
    observed = Figures()
    started = time.monotonic()
    yield observed
    observed.setdefault("scenario_seconds", round(time.monotonic() - started, 1))
    for name, value in observed.items():
        record_property(name, value)
    print(f"\nFIGURES {request.node.name}: {dict(observed)}")


class DatabaseLink:
    """A TCP relay in front of PostgreSQL that a test can cut: open connections are reset and new
    ones refused, as when the database host goes away; `restore` brings it back on the same port.
    """

    def __init__(self, target_port: int = 5432) -> None:
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def url_for(self, database_url: str) -> str:
        return (
            make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        )

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in its thread
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class Blackhole:
    """A port that accepts TCP connections and never says a word: a database host that hangs."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)  # never accepted: the kernel completes handshakes, nobody answers
        self.port = self.socket.getsockname()[1]

    def close(self) -> None:
        self.socket.close()
