"""Anonymous attackers of the production front: slow clients and a login flood.

The probe of issue #14 starved USSD with both: connections that dribble a request a byte every
two seconds (slowloris), and wrong passwords posted to the admin's login as fast as it answers
(each argon2 check costs ~200 ms of CPU). `tests/faults/test_slow_clients.py` asserts that USSD
survives them behind nginx; `bench/under_attack.py` measures the step time while they run.
"""

from __future__ import annotations

import collections
import re
import socket
import ssl
import threading

import requests

TRICKLE_SECONDS = 2.0
SLOW_USSD_HEADER = b"POST /ussd HTTP/1.1\r\nHost: sira\r\nContent-Type: application/x-www-form-urlencoded\r\n"
_LOGIN_BODY = b"email=a%40b.org&password=" + b"x" * 200
SLOW_ADMIN_POST = (
    b"POST /admin/login HTTP/1.1\r\nHost: sira\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: %d\r\n\r\n" % len(_LOGIN_BODY) + _LOGIN_BODY
)


class SlowClient(threading.Thread):
    """Sends a request one byte every two seconds, and reconnects whenever the server cuts it."""

    def __init__(self, port: int, cafile: str, request: bytes, stop: threading.Event,
                 trickle: float = TRICKLE_SECONDS) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.port, self.request, self.stop, self.trickle = port, request, stop, trickle
        self.connections = 0
        self.cut = 0
        self.bytes_sent = 0
        self.context = ssl.create_default_context(cafile=cafile)

    def run(self) -> None:
        while not self.stop.is_set():
            self.connections += 1
            try:
                raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                with self.context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    for byte in self.request:
                        sock.sendall(bytes([byte]))
                        self.bytes_sent += 1
                        if self.stop.wait(self.trickle):
                            return
                    sock.recv(1024)
            except OSError:
                self.cut += 1  # the front gave up on us: come back, as an attacker would
                if self.stop.wait(0.1):
                    return


class LoginFlood(threading.Thread):
    """Wrong passwords posted to the admin's login as fast as it answers."""

    def __init__(
        self, url: str, cafile: str, stop: threading.Event, email: str = "admin@example.org"
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.cafile, self.stop, self.email = url, cafile, stop, email
        self.answers: collections.Counter[int] = collections.Counter()

    def run(self) -> None:
        http = requests.Session()
        http.trust_env, http.verify = False, self.cafile  # or an environment's CA bundle would overrule it
        form = http.get(self.url + "/admin/login", timeout=10).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)[1]
        data = {"email": self.email, "password": "guess", "csrf_token": csrf}
        while not self.stop.is_set():
            try:
                answer = http.post(self.url + "/admin/login", data=data, timeout=10, allow_redirects=False)
                self.answers[answer.status_code] += 1
            except requests.RequestException:
                self.answers[0] += 1


class Attack:
    """Slow header and slow admin clients and a login flood against one front, started and stopped together."""

    def __init__(self, port: int, url: str, cafile: str, slow_headers: int = 10, slow_admin: int = 10,
                 flooders: int = 4, trickle: float = TRICKLE_SECONDS) -> None:  # fmt: skip
        self.stop_event = threading.Event()
        self.slow = [SlowClient(port, cafile, SLOW_USSD_HEADER, self.stop_event, trickle)
                     for _ in range(slow_headers)]  # fmt: skip
        self.slow += [
            SlowClient(port, cafile, SLOW_ADMIN_POST, self.stop_event, trickle) for _ in range(slow_admin)
        ]
        self.slow_headers = slow_headers
        self.flood = [LoginFlood(url, cafile, self.stop_event) for _ in range(flooders)]

    def start(self) -> None:
        for client in [*self.slow, *self.flood]:
            client.start()

    def holding(self) -> int:
        """Slow clients still at it."""
        return sum(1 for client in self.slow if client.is_alive())

    def stop(self, grace: float = TRICKLE_SECONDS + 6) -> None:
        self.stop_event.set()
        for client in [*self.slow, *self.flood]:
            client.join(grace)

    def logins(self) -> collections.Counter[int]:
        """The flood's answers by HTTP status (0: no answer)."""
        return sum((f.answers for f in self.flood), collections.Counter())

    def figures(self) -> dict[str, object]:
        return {
            "slow_clients": len(self.slow),
            "slow_connections": sum(c.connections for c in self.slow),
            "slow_connections_cut": sum(c.cut for c in self.slow),
            "slow_header_connections_cut": sum(c.cut for c in self.slow[: self.slow_headers]),
            "slow_bytes_sent": sum(c.bytes_sent for c in self.slow),
            "login_flood_answers": {str(k): v for k, v in sorted(self.logins().items())},
        }
