"""The production front as processes a test can start: gunicorn pools and nginx before them.

`GunicornPool` is `gunicorn -c gunicorn.conf.py "app:create_app()"` as the Procfile runs it, on a
free port. `NginxFront` renders `deploy/nginx/sira.conf` with free ports, those pools (one or two
callback pools, as the shipped upstream names two) and a throw-away certificate, wraps it in a
minimal main configuration whose logs and temporary files live in the test's directory, and runs
the machine's nginx on it. Its access log names the pool (or pools, when one failed and nginx
passed the request on) that served each request.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import Phone
from tests.gateway_helpers import ROOT, free_port, fresh_number, wait_for

SHIPPED = ROOT / "deploy" / "nginx" / "sira.conf"


class GunicornPool:
    """One gunicorn master and its workers, in a process group of their own."""

    def __init__(
        self, name: str, settings: dict[str, object], log: Path, private_host: str = "", **env: str
    ) -> None:
        """`private_host`: the pool also listens there, as a second machine's pool listens on its
        private address (BIND="127.0.0.1:port,10.0.0.12:port"), and nginx reaches it there."""
        self.name, self.log = name, log
        self.port = free_port()
        self.upstream = f"{private_host or '127.0.0.1'}:{self.port}"
        bind = ",".join(f"{host}:{self.port}" for host in ("127.0.0.1", private_host) if host)
        self.env = {**os.environ, **{key.upper(): str(value) for key, value in settings.items()},
                    "BIND": bind, **env}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> GunicornPool:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(self._answers, timeout=40, interval=0.1)
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited:\n{self.log.read_text(errors='replace')[-2000:]}")
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self) -> None:
        """kill -9 of the master and its workers at once: the machine lost power, or the OOM killer."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)


def nginx_binary() -> str:
    """The machine's nginx; `.ci/run` installs it, so under CI its absence is a failure."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return found


class NginxFront:
    """The shipped configuration, rendered for loopback ports and run in the foreground."""

    def __init__(
        self, directory: Path, callbacks: GunicornPool | list[GunicornPool], admin: GunicornPool | None
    ) -> None:
        self.directory = directory
        self.http_port, self.https_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.certificate = directory / "cert.pem"
        self.key = directory / "key.pem"
        self.conf = directory / "nginx.conf"
        self.error_log = directory / "nginx-error.log"
        self.pools = callbacks if isinstance(callbacks, list) else [callbacks]
        assert 1 <= len(self.pools) <= 2, "the shipped upstream names two callback pools"
        self.callbacks, self.admin = self.pools[0], admin
        self.access_log = directory / "nginx-access.log"
        self.process: subprocess.Popen[bytes] | None = None

    def render(self) -> str:
        """The shipped server blocks with this test's ports and certificate, nothing else changed."""
        text = SHIPPED.read_text()
        second = f"server {self.pools[1].upstream};" if len(self.pools) == 2 else ""
        admin_port = self.admin.port if self.admin is not None else free_port()  # none: a 502
        replacements = {
            "server 127.0.0.1:5001;": f"server {self.pools[0].upstream};",
            "server 127.0.0.1:5002;": second,
            "server 127.0.0.1:5000;": f"server 127.0.0.1:{admin_port};",
            "listen 80;": f"listen 127.0.0.1:{self.http_port};",
            "listen 443 ssl;": f"listen 127.0.0.1:{self.https_port} ssl;",
            "/etc/ssl/sira/fullchain.pem": str(self.certificate),
            "/etc/ssl/sira/privkey.pem": str(self.key),
        }
        for old, new in replacements.items():
            assert text.count(old) == 1, f"{SHIPPED.name} no longer has {old!r}"
            text = text.replace(old, new)
        return "\n".join(line for line in text.splitlines() if "listen [::]" not in line)

    def start(self) -> NginxFront:
        binary = nginx_binary()
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
        checked = subprocess.run([binary, "-t", "-e", str(self.error_log), "-c", str(self.conf), "-g", directives],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            [binary, "-e", str(self.error_log), "-c", str(self.conf), "-g", directives],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for(self._answers, timeout=10, interval=0.05)
        return self

    def _answers(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1, verify=str(self.certificate)).ok
        except requests.RequestException:
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


def front_phone(front: NginxFront) -> Phone:
    """A handset whose gateway calls through the front, trusting its throw-away certificate."""
    phone = Phone(front.url, fresh_number())
    phone.http.trust_env = False  # or an environment's CA bundle would overrule `verify`
    phone.http.verify = str(front.certificate)
    return phone
