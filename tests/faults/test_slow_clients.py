"""Slow clients, slow admin requests and a login flood, through the production front, against USSD.

Ten clients that send a request header one byte every two seconds used to hold every gunicorn
thread for as long as they lasted, and USSD steps waited past 8 s. Here the shipped nginx
configuration stands in front of two gunicorn pools (the gateway's callbacks and the admin, as
the Procfile runs them): nginx holds the slow connections itself, cuts them at its read
time-outs, and hands the app only complete requests, so USSD steps stay fast while the slow
clients keep coming back. The scenario prints the step times it observed, quiet and under attack.
"""

from __future__ import annotations

import collections
import re
import socket
import ssl
import statistics
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.faults.conftest import Stage
from tests.faults.fronts import SHIPPED, GunicornPool, NginxFront, front_phone
from tests.gateway_helpers import ROOT

pytestmark = pytest.mark.faults

SLOW_HEADER_CLIENTS = 10
SLOW_ADMIN_CLIENTS = 10
LOGIN_FLOODERS = 4
TRICKLE_SECONDS = 2.0
STEP_BOUND_SECONDS = 2.0


class SlowClient(threading.Thread):
    """Sends a request one byte every two seconds, and reconnects whenever the server cuts it."""

    def __init__(self, front: NginxFront, request: bytes, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.front, self.request, self.stop = front, request, stop
        self.connections = 0
        self.cut = 0
        self.context = ssl.create_default_context(cafile=str(front.certificate))

    def run(self) -> None:
        while not self.stop.is_set():
            self.connections += 1
            try:
                raw = socket.create_connection(("127.0.0.1", self.front.https_port), timeout=5)
                with self.context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    for byte in self.request:
                        sock.sendall(bytes([byte]))
                        if self.stop.wait(TRICKLE_SECONDS):
                            return
                    sock.recv(1024)
            except OSError:
                self.cut += 1  # the front gave up on us: come back, as an attacker would
                if self.stop.wait(0.1):
                    return


class LoginFlood(threading.Thread):
    """Wrong passwords posted to the admin's login as fast as it answers."""

    def __init__(self, front: NginxFront, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.front, self.stop = front, stop
        self.answers: collections.Counter[int] = collections.Counter()

    def run(self) -> None:
        http = requests.Session()
        http.trust_env, http.verify = False, str(self.front.certificate)
        form = http.get(self.front.url + "/admin/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
        data = {"email": "admin@example.org", "password": "guess", "csrf_token": csrf}
        while not self.stop.is_set():
            try:
                answer = http.post(
                    self.front.url + "/admin/login", data=data, timeout=10, allow_redirects=False
                )
                self.answers[answer.status_code] += 1
            except requests.RequestException:
                self.answers[0] += 1


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ussd_steps(front: NginxFront, seconds: float) -> list[float]:
    """Phones registering through the front for `seconds`; how long each step took."""
    times: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        phone = front_phone(front)
        for answer in (None, "1", "1", "Awa", "2"):
            started = time.monotonic()
            screen = phone.dial() if answer is None else phone.send(answer)
            times.append(time.monotonic() - started)
            assert screen.startswith(("CON ", "END ")), screen
    return times


@pytest.fixture
def front(stage: Stage, tmp_path: Path):
    """Two gunicorn pools (callbacks, admin) and nginx in front of them, as in production."""
    settings = {**stage.settings, "trusted_proxies": 1}
    callbacks = GunicornPool("callbacks", settings, tmp_path / "callbacks.log")
    admin = GunicornPool("admin", settings, tmp_path / "admin.log")
    started: list[GunicornPool | NginxFront] = []
    try:
        for process in (callbacks, admin):
            started.append(process.start())
        started.append(NginxFront(tmp_path, callbacks, admin).start())
        yield started[-1]
    finally:
        for process in reversed(started):
            process.stop()


def test_ussd_steps_stay_fast_while_slow_clients_and_a_login_flood_hold_the_front(
    front: NginxFront, figures
) -> None:
    quiet = ussd_steps(front, 3)

    stop = threading.Event()
    header = b"POST /ussd HTTP/1.1\r\nHost: sira\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    body = b"email=a%40b.org&password=" + b"x" * 200
    admin_post = (b"POST /admin/login HTTP/1.1\r\nHost: sira\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))  # fmt: skip
    slow = [SlowClient(front, header, stop) for _ in range(SLOW_HEADER_CLIENTS)]
    slow += [SlowClient(front, admin_post + body, stop) for _ in range(SLOW_ADMIN_CLIENTS)]
    flood = [LoginFlood(front, stop) for _ in range(LOGIN_FLOODERS)]
    for client in [*slow, *flood]:
        client.start()
    try:
        time.sleep(2 * TRICKLE_SECONDS)  # every slow client has its connection and has sent bytes
        attacked = ussd_steps(front, 12)
        holding = sum(1 for client in slow if client.is_alive())
    finally:
        stop.set()
        for client in [*slow, *flood]:
            client.join(TRICKLE_SECONDS + 6)
    logins: collections.Counter[int] = sum((f.answers for f in flood), collections.Counter())

    figures.update(
        quiet_steps=len(quiet),
        quiet_p50_ms=round(1000 * statistics.median(quiet)),
        quiet_p99_ms=round(1000 * percentile(quiet, 0.99)),
        attacked_steps=len(attacked),
        attacked_p50_ms=round(1000 * statistics.median(attacked)),
        attacked_p99_ms=round(1000 * percentile(attacked, 0.99)),
        attacked_max_ms=round(1000 * max(attacked)),
        slow_connections=sum(client.connections for client in slow),
        slow_connections_cut_by_nginx=sum(client.cut for client in slow),
        login_flood_answers=dict(logins),
    )
    assert holding == len(slow), "the slow clients were still at it during the measurement"
    assert max(attacked) < STEP_BOUND_SECONDS, f"a USSD step took {max(attacked):.1f} s behind slow clients"
    # nginx's read time-outs cut the header trickle (5 s for the whole header) and they came back
    assert sum(client.cut for client in slow[:SLOW_HEADER_CLIENTS]) >= SLOW_HEADER_CLIENTS
    # the flood was answered (throttled: 429s, no password check), not left hanging
    assert logins[429] > logins[200] > 0 and not logins[0], logins


def test_the_callbacks_are_served_by_their_own_pool(front: NginxFront) -> None:
    """With the admin's pool gone, the admin is a 502 and USSD goes on: they share no thread."""
    admin_login = front.url + "/admin/login"
    verify = str(front.certificate)
    assert requests.get(admin_login, timeout=5, verify=verify).status_code == 200
    front.admin.stop()
    assert requests.get(admin_login, timeout=5, verify=verify).status_code == 502
    phone = front_phone(front)
    assert phone.dial().startswith("CON ")
    assert phone.send("1").startswith("CON ")


def test_the_procfile_serves_each_pool_where_nginx_sends_it() -> None:
    """`web` and `callbacks` listen on the upstreams of the shipped configuration, by default."""
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    shipped = SHIPPED.read_text()
    for entry, upstream in (("web", "sira_admin"), ("callbacks", "sira_callbacks")):
        port = re.search(r"--bind 127\.0\.0\.1:\$\{\w+:-(\d+)\}", procfile[entry])
        assert port, procfile[entry]
        assert re.search(rf"upstream {upstream} {{\s*server 127\.0\.0\.1:{port[1]};", shipped), (
            entry,
            upstream,
        )
