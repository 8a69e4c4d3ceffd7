"""A real Kannel for tests: Debian's bearerbox and smsbox, with kannel-extras' fake SMSC as the phone
network, each started as its own process on free ports, as Redis and the emulator are.

Two fake SMSC links are configured. `fake` carries what Sira sends: a long-running `fakesmsc`
prints every message it gets. `inject` only ever brings messages in (`allowed-smsc-id` keeps
sends off it): each incoming SMS a test needs is one short-lived `fakesmsc -m 1` on that link.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
import requests

from tests.gateway_helpers import free_port, wait_for

FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
USERNAME, PASSWORD = "sira", "kannel-test-password"
ADMIN_PASSWORD = "kannel-test-admin"
# fakesmsc logs each message it gets as: Got message 3: <SIRA +22370000002 text Bonjour ...>
_GOT = re.compile(r"Got message \d+: <(\S+) (\S+) (text|ucs-2|data|udh) (.*)>$")

CONFIG = """\
group = core
admin-port = {admin_port}
admin-password = {admin_password}
admin-allow-ip = 127.0.0.1
smsbox-port = {smsbox_port}
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 1
dlr-storage = internal

group = smsc
smsc = fake
smsc-id = fake
port = {fake_port}
connect-allow-ip = 127.0.0.1

group = smsc
smsc = fake
smsc-id = inject
port = {inject_port}
connect-allow-ip = 127.0.0.1
allowed-smsc-id = inject

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
log-file = "{dir}/smsbox.log"
log-level = 1
mo-recode = true

group = sendsms-user
username = {username}
password = {password}
concatenation = true
max-messages = 10

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{get_url}?from=%p&to=%P&text=%a&id=%I&time=%T"
"""


@dataclass(frozen=True)
class Received:
    """One message as the fake SMSC got it from Kannel."""

    sender: str
    to: str
    coding: str  # "text" (GSM 7-bit) or "ucs-2"
    text: str


@dataclass
class Kannel:
    """bearerbox + smsbox + the fake SMSC; `stop()` ends each of them, by process."""

    dir: Path
    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms_port']}/cgi-bin/sendsms"

    def start(self, name: str) -> None:
        """Start one box (bearerbox, smsbox) or the SMSC's fakesmsc, and wait until it serves."""
        if name == "fakesmsc":
            command = [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["fake_port"]), "-i", "0.1", "-m", "0",
                       "unused unused text unused"]  # fmt: skip
        else:
            command = [box(name), str(self.dir / "kannel.conf")]
        out = (self.dir / f"{name}.out").open("ab")
        self.processes[name] = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
        out.close()
        ready = {
            "bearerbox": self._admin_answers,
            "smsbox": self._sendsms_answers,
            "fakesmsc": self._fake_online,
        }
        wait_for(lambda: self._alive(name) and ready[name](), timeout=15, interval=0.1)

    def revive(self) -> list[str]:
        """Start again any box that died; returns their names.

        Kannel 1.4.5's smsbox panics (`conn_unregister: Assertion conn != NULL`) when a server it
        calls back resets a kept-alive connection, which each test's live server does as it
        shuts down: the next test gets a fresh smsbox instead of a dead one.
        """
        dead = [name for name, process in self.processes.items() if process.poll() is not None]
        for name in dead:
            self.processes.pop(name)
            self.start(name)
        return dead

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for name in ("fakesmsc", "smsbox", "bearerbox"):
            self.stop_process(name)

    def received(self) -> list[Received]:
        """Every message the fake SMSC got, oldest first, with UCS-2 decoded."""
        found = []
        for line in (self.dir / "fakesmsc.out").read_text(errors="replace").splitlines():
            match = _GOT.search(line)
            if match:
                sender, to, coding, data = match.groups()
                # UCS-2 is shown url-encoded, a space byte as "+" (the text of a space is %00+).
                text = (
                    unquote_to_bytes(data.replace("+", " ")).decode("utf-16-be")
                    if coding == "ucs-2"
                    else data
                )
                found.append(Received(sender, to, coding, text))
        return found

    def received_by(self, number: str) -> list[Received]:
        return [m for m in self.received() if m.to == number]

    def inject(self, sender: str, to: str, text: str) -> None:
        """A phone sends `text` to our number `to`: one fakesmsc brings it in on the `inject` link."""
        encoded = "".join(f"%{b:02X}" for b in text.encode("utf-16-be"))
        command = [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["inject_port"]), "-i", "0", "-m", "1",
                   f"{sender} {to} ucs2 {encoded}"]  # fmt: skip
        log = self.dir / "inject.out"
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: "sent message 1" in log.read_text(errors="replace"), timeout=10, interval=0.05)
        finally:  # fakesmsc stays connected after its last message; it has done its job
            process.terminate()
            process.wait(timeout=10)

    def _alive(self, name: str) -> bool:
        process = self.processes[name]
        if process.poll() is not None:
            output = (self.dir / f"{name}.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}: {output}")
        return True

    def _admin_status(self) -> str:
        url = f"http://127.0.0.1:{self.ports['admin_port']}/status.txt"
        try:
            return requests.get(url, params={"password": ADMIN_PASSWORD}, timeout=1).text
        except requests.ConnectionError:
            return ""

    def _admin_answers(self) -> bool:
        return "Kannel bearerbox" in self._admin_status()

    def _fake_online(self) -> bool:
        return bool(re.search(r"^\s*fake\[fake\].*\(online", self._admin_status(), re.MULTILINE))

    def _sendsms_answers(self) -> bool:
        try:
            requests.get(self.sendsms_url, timeout=1)
        except requests.ConnectionError:
            return False
        return True


def box(name: str) -> str:
    """Where Debian puts a Kannel box (/usr/sbin, not on every user's PATH)."""
    return shutil.which(name) or f"/usr/sbin/{name}"


def kannel_installed() -> bool:
    """Whether Debian's kannel and kannel-extras are here; under CI their absence fails the test."""
    if all(os.access(path, os.X_OK) for path in (box("bearerbox"), box("smsbox"), FAKESMSC)):
        return True
    message = "Kannel is not installed: apt-get install kannel kannel-extras"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run the Kannel tests)", pytrace=False)
    pytest.skip(message)
    return False


def start_kannel(directory: Path, get_url: str) -> Kannel:
    """Write a config with free ports into `directory`, start bearerbox, smsbox and the fake SMSC."""
    kannel_installed()
    names = ("admin_port", "smsbox_port", "fake_port", "inject_port", "sendsms_port")
    kannel = Kannel(directory, {name: free_port() for name in names})
    (directory / "kannel.conf").write_text(
        CONFIG.format(
            dir=directory,
            admin_password=ADMIN_PASSWORD,
            username=USERNAME,
            password=PASSWORD,
            get_url=get_url,
            **kannel.ports,
        )
    )
    try:
        for name in ("bearerbox", "smsbox", "fakesmsc"):
            kannel.start(name)
    except BaseException:
        kannel.stop()
        raise
    return kannel
