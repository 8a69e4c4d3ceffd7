"""Test plumbing for the gateway: the emulator as a real process, and a real callback receiver."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TypeVar

import requests
from redis import Redis
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from infra import keys

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
# Past the sample directory's providers (+22370000001...): a provider's number dials into its own menu.
_numbers = itertools.count(100_000)


def fresh_number() -> str:
    """A fictitious Malian mobile number never used before in this run, so tests cannot see each other."""
    return f"+2237{next(_numbers):07d}"


def end_cooldown(redis: Redis, route: str) -> None:
    """A skipped route's cool-down ends now, as its mark's expiry would end it: the next send by
    that route is its probe. Tests set a cool-down no run can outlast and end it here, so that a
    slow machine cannot end it early (an extra probe) nor late (no probe)."""
    assert redis.exists(keys.route_down(route)), f"route {route} is not in a cool-down"
    redis.delete(keys.route_down(route))


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe: Callable[[], T], timeout: float = 3.0, interval: float = 0.02) -> T:
    """Poll until `probe` returns something truthy; fail the test with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass(frozen=True)
class Received:
    path: str
    form: dict[str, str]
    json: object = None  # a JSON body (Orange's notifications), parsed


@dataclass
class CallbackReceiver:
    """Stands in for Sira's /sms/* webhooks: a real HTTP server that records what it is sent."""

    server: BaseWSGIServer
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()


def start_receiver() -> CallbackReceiver:
    """Serve a recording WSGI app on a free port in a daemon thread."""
    holder: list[CallbackReceiver] = []

    @Request.application
    def app(request: Request) -> Response:
        receiver = holder[0]
        with receiver.lock:
            body = request.get_json(silent=True) if request.is_json else None
            receiver.received.append(Received(request.path, dict(request.form), body))
        return Response(f"received {request.path}", mimetype="text/plain")

    server = make_server("127.0.0.1", 0, app, threaded=True)
    holder.append(CallbackReceiver(server))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return holder[0]


@dataclass
class EmulatorProcess:
    """The emulator started exactly as an operator would, with `python -m gateway.emulator`."""

    process: subprocess.Popen[bytes]
    url: str
    log: IO[bytes]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.url + path, timeout=5, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=5, **kwargs)  # type: ignore[arg-type]

    def messages_to(self, number: str) -> list[dict[str, object]]:
        return [m for m in self.get("/messages").json() if m["to"] == number]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def start_emulator(
    callback_base: str, log_path: Path, delivery_delay: float = 0.05, port: int | None = None
) -> EmulatorProcess:
    """Start the emulator on `port` (default: a free one) and return once it answers HTTP."""
    port = port or free_port()
    log = log_path.open("ab")
    command = [
        sys.executable,
        "-m",
        "gateway.emulator",
        "--port",
        str(port),
        "--callback-base",
        callback_base,
    ]
    command += ["--delivery-delay", str(delivery_delay)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    emulator = EmulatorProcess(process, f"http://127.0.0.1:{port}", log)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited with {process.returncode}: {log_path.read_text()}")
        try:
            return requests.get(emulator.url + "/", timeout=0.5).ok
        except requests.ConnectionError:
            return False

    try:
        wait_for(answers, timeout=10)
    except BaseException:
        emulator.stop()
        raise
    return emulator
