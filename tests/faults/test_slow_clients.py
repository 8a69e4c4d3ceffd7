"""Slow clients, slow admin requests and a login flood, through the production front, against USSD.

Ten clients that send a request header one byte every two seconds used to hold every gunicorn
thread for as long as they lasted, and USSD steps waited past 8 s. Here the shipped nginx
configuration stands in front of two gunicorn pools (the gateway's callbacks and the admin, as
the Procfile runs them): nginx holds the slow connections itself, cuts them at its read
time-outs, and hands the app only complete requests, so USSD steps stay fast while the slow
clients keep coming back. The scenario prints the step times it observed, quiet and under attack.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from pathlib import Path

import pytest
import requests

from bench.attackers import TRICKLE_SECONDS, Attack
from tests.faults.conftest import Stage
from tests.faults.fronts import SHIPPED, GunicornPool, NginxFront, front_phone
from tests.gateway_helpers import ROOT

pytestmark = pytest.mark.faults

SLOW_HEADER_CLIENTS = 10
SLOW_ADMIN_CLIENTS = 10
LOGIN_FLOODERS = 4
STEP_BOUND_SECONDS = 2.0


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

    attack = Attack(front.https_port, front.url, str(front.certificate), SLOW_HEADER_CLIENTS,
                    SLOW_ADMIN_CLIENTS, LOGIN_FLOODERS, TRICKLE_SECONDS)  # fmt: skip
    attack.start()
    try:
        time.sleep(2 * TRICKLE_SECONDS)  # every slow client has its connection and has sent bytes
        attacked = ussd_steps(front, 12)
        holding = attack.holding()
    finally:
        attack.stop()
    logins = attack.logins()
    seen = attack.figures()

    figures.update(
        quiet_steps=len(quiet),
        quiet_p50_ms=round(1000 * statistics.median(quiet)),
        quiet_p99_ms=round(1000 * percentile(quiet, 0.99)),
        attacked_steps=len(attacked),
        attacked_p50_ms=round(1000 * statistics.median(attacked)),
        attacked_p99_ms=round(1000 * percentile(attacked, 0.99)),
        attacked_max_ms=round(1000 * max(attacked)),
        slow_connections=seen["slow_connections"],
        slow_connections_cut_by_nginx=seen["slow_connections_cut"],
        login_flood_answers=dict(logins),
    )
    assert holding == len(attack.slow), "the slow clients were still at it during the measurement"
    assert max(attacked) < STEP_BOUND_SECONDS, f"a USSD step took {max(attacked):.1f} s behind slow clients"
    # nginx's read time-outs cut the header trickle (5 s for the whole header) and they came back
    assert seen["slow_header_connections_cut"] >= SLOW_HEADER_CLIENTS
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


# The shipped login pacing (deploy/nginx/sira.conf): `limit_req_zone ... rate=2r/s`, `burst=20`.
LOGIN_RATE = int(re.search(r"zone=sira_login:\S+ rate=(\d+)r/s", SHIPPED.read_text())[1])
LOGIN_BURST = int(re.search(r"limit_req zone=sira_login burst=(\d+)", SHIPPED.read_text())[1])


def test_a_login_flood_is_paced_by_the_front_and_only_its_burst_reaches_the_admin(front: NginxFront) -> None:
    """Sixty login attempts at once from one address: nginx queues a burst of them for the admin's
    pool, at its pace, and refuses the rest itself; the app never sees more than the burst."""
    http = requests.Session()
    http.trust_env, http.verify = False, str(front.certificate)
    form = http.get(front.url + "/admin/login", timeout=10).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
    data = {"email": "admin@example.org", "password": "guess", "csrf_token": csrf}
    cookies = http.cookies.get_dict()
    answers: list[tuple[int, bool]] = []
    locations: set[str] = set()
    lock = threading.Lock()

    threads_n = 3 * LOGIN_BURST
    start = threading.Barrier(threads_n)
    sent_at: list[float] = []

    def attempt() -> None:
        own = requests.Session()  # its TLS connection made first (nginx paces POSTs only), so that
        own.trust_env, own.verify = False, str(front.certificate)  # the POSTs leave together
        own.get(front.url + "/admin/login", timeout=30)
        own.cookies.clear()  # the form's token is the one read above, with its cookie
        start.wait(60)
        with lock:
            sent_at.append(time.monotonic())
        answer = own.post(
            front.url + "/admin/login", data=data, cookies=cookies, timeout=60, allow_redirects=False
        )
        with lock:
            by_front = "<center>nginx</center>" in answer.text
            answers.append((answer.status_code, by_front))
            if by_front:
                locations.add(answer.headers.get("Location", ""))

    threads = [threading.Thread(target=attempt) for _ in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert len(answers) == len(threads)
    by_nginx = [status for status, front_page in answers if front_page]
    by_app = [status for status, front_page in answers if not front_page]
    # the front's refusals send the person back to the form, which says in words to wait a moment
    assert set(by_nginx) == {303} and len(locations) == 1, (answers, locations)
    (location,) = locations
    assert location.endswith("/admin/login?paced=1"), location
    back = http.get(front.url + "/admin/login?paced=1", timeout=10)
    assert back.status_code == 200 and "Trop de connexions" in back.text, back.text
    # the burst, the one let through at once, and what the pace lets in while the POSTs still arrive
    spread = max(sent_at) - min(sent_at)
    assert len(by_app) <= LOGIN_BURST + 1 + int(LOGIN_RATE * spread) + 1, (answers, spread)
    # wrong password, then the app's own throttle; on a slow machine the burst can also find every
    # password check taken (PASSWORD_CHECKS at once), which the app answers 503 "try again"
    assert set(by_app) <= {200, 429, 503}, answers
