"""The production front as processes a test or a benchmark can start: nginx before gunicorn pools.

`NginxFront` renders `deploy/nginx/sira.conf` with free ports, the pools' addresses (one or two
callback pools, as the shipped upstream names two) and a throw-away certificate, wraps it in a
minimal main configuration whose logs and temporary files live in a directory of the caller's,
and runs the machine's nginx on it. Its access log names the pool (or pools, when one failed and
nginx passed the request on) that served each request. `tests/faults/fronts.py`
and `bench/under_attack.py` both serve through it, so what they measure is the shipped file.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path
from typing import Protocol

from bench.ussd_steps import free_port

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "nginx" / "sira.conf"


class Upstream(Protocol):
    """A gunicorn pool as nginx sees it: a port on loopback (and, for a test's, an `upstream`
    address "host:port" where nginx reaches it)."""

    port: int


def upstream_of(pool: Upstream) -> str:
    return getattr(pool, "upstream", None) or f"127.0.0.1:{pool.port}"


def find_nginx() -> str | None:
    """The machine's nginx (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )


class NginxFront:
    """The shipped configuration, rendered for loopback ports and run in the foreground."""

    def __init__(
        self,
        directory: Path,
        callbacks: Upstream | list[Upstream],
        admin: Upstream | None,
        binary: str | None = None,
        new_session: bool = False,
    ) -> None:
        self.directory = directory
        self.new_session = new_session  # a process group of its own, whose CPU a benchmark can count
        self.binary = binary or find_nginx() or "nginx"
        self.http_port, self.https_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.certificate = directory / "cert.pem"
        self.key = directory / "key.pem"
        self.conf = directory / "nginx.conf"
        self.error_log = directory / "nginx-error.log"
        self.pools = callbacks if isinstance(callbacks, list) else [callbacks]
        if not 1 <= len(self.pools) <= 2:
            raise ValueError("the shipped upstream names two callback pools")
        self.callbacks, self.admin = self.pools[0], admin
        self.access_log = directory / "nginx-access.log"
        self.process: subprocess.Popen[bytes] | None = None

    def render(self) -> str:
        """The shipped server blocks with these ports and certificate, nothing else changed."""
        text = SHIPPED.read_text()
        second = f"server {upstream_of(self.pools[1])};" if len(self.pools) == 2 else ""
        admin_port = self.admin.port if self.admin is not None else free_port()  # none: a 502
        replacements = {
            "server 127.0.0.1:5001;": f"server {upstream_of(self.pools[0])};",
            "server 127.0.0.1:5002;": second,
            "server 127.0.0.1:5000;": f"server 127.0.0.1:{admin_port};",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
            "/etc/ssl/sira/fullchain.pem": str(self.certificate),
            "/etc/ssl/sira/privkey.pem": str(self.key),
        }
        for old, new in replacements.items():
            if text.count(old) != 1:
                raise RuntimeError(f"{SHIPPED.name} no longer has {old!r} exactly once")
            text = text.replace(old, new)
        return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)

    def tls_context(self) -> ssl.SSLContext:
        """A client context that trusts this front's throw-away certificate only."""
        return ssl.create_default_context(cafile=str(self.certificate))

    def start(self, timeout: float = 10) -> NginxFront:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(self.key), "-out", str(self.certificate)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        (self.directory / "sira.conf").write_text(self.render())
        temp = self.directory / "nginx-temp"
        temp.mkdir(exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp dir
        self.conf.write_text(
            f"{user}worker_processes 1;\nerror_log {self.error_log} info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  log_format upstreams '$status|$upstream_addr|$request_uri';\n"
            f"  access_log {self.access_log} upstreams;\n"
            + "".join(f"  {kind}_temp_path {temp / kind};\n" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
            + f"  include {self.directory / 'sira.conf'};\n}}\n"
        )  # fmt: skip
        directives = f"daemon off; pid {self.directory / 'nginx.pid'};"
        checked = subprocess.run([self.binary, "-t", "-e", str(self.error_log), "-c", str(self.conf),
                                  "-g", directives], capture_output=True, text=True, timeout=30)  # fmt: skip
        if checked.returncode != 0:
            raise RuntimeError(f"nginx refuses the configuration: {checked.stderr}")
        self.process = subprocess.Popen(
            [self.binary, "-e", str(self.error_log), "-c", str(self.conf), "-g", directives],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=self.new_session,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"nginx did not answer: {self.error_log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, timeout=1, context=self.tls_context()
            )
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def served(self) -> list[tuple[str, int, list[int]]]:
        """Each request logged so far: its path, status, and the ports of the pools it went to."""
        entries = []
        for line in self.access_log.read_text().splitlines():
            status, upstreams, path = line.split("|", 2)
            ports = [int(a.rsplit(":", 1)[1]) for a in upstreams.split(", ") if ":" in a]
            entries.append((path, int(status), ports))
        return entries

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
