"""The production front as processes a test can start: gunicorn pools and nginx before them.

`GunicornPool` is `gunicorn -c gunicorn.conf.py "app:create_app()"` as the Procfile runs it, on a
free port. `NginxFront` is bench/front.py's (the shipped `deploy/nginx/sira.conf` rendered with
free ports, those pools and a throw-away certificate; its access log names the pool that served
each request), skipped where nginx is not installed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import bench.front
from bench.front import SHIPPED, find_nginx
from tests.conftest import Phone
from tests.gateway_helpers import ROOT, free_port, fresh_number, wait_for

__all__ = ["SHIPPED", "GunicornPool", "NginxFront", "front_phone", "nginx_binary"]


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
    found = find_nginx()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return found


class NginxFront(bench.front.NginxFront):
    """The shipped configuration in front of the test's pools (bench/front.py), skipped without nginx."""

    callbacks: GunicornPool
    admin: GunicornPool | None
    pools: list[GunicornPool]

    def __init__(
        self, directory: Path, callbacks: GunicornPool | list[GunicornPool], admin: GunicornPool | None
    ) -> None:
        super().__init__(directory, callbacks, admin, binary=nginx_binary())


def front_phone(front: NginxFront) -> Phone:
    """A handset whose gateway calls through the front, trusting its throw-away certificate."""
    phone = Phone(front.url, fresh_number())
    phone.http.trust_env = False  # or an environment's CA bundle would overrule `verify`
    phone.http.verify = str(front.certificate)
    return phone
