"""Redis behind Sentinel for tests: a primary, its replica and one Sentinel, each a
`redis-server` of its own on a free port (`redis-server --sentinel`: no redis-sentinel binary
needed), no persistence. Used by tests/test_sentinel.py and tests/faults/test_multinode.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from redis import Redis

from tests.gateway_helpers import free_port, wait_for

MASTER = "sira"


class RedisPair:
    """A primary, its replica and one Sentinel watching them, each a `redis-server` of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = {"primary": free_port(), "replica": free_port(), "sentinel": free_port()}
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> RedisPair:
        primary, replica, sentinel = self.ports.values()
        # --dir: a replica's first sync writes an RDB file, which belongs in the test's folder.
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self._spawn(["redis-server", "--port", str(primary), *common])
        self._spawn(
            ["redis-server", "--port", str(replica), *common, "--replicaof", "127.0.0.1", str(primary)]
        )
        conf = self.directory / "sentinel.conf"  # Sentinel rewrites its file: one of its own
        conf.write_text(
            f"port {sentinel}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 5000\n"
        )
        self._spawn(["redis-server", str(conf), "--sentinel"])
        wait_for(lambda: self._replicas_known(), timeout=20, interval=0.2)
        return self

    def _spawn(self, command: list[str]) -> None:
        log = (self.directory / f"redis-{len(self.processes)}.log").open("wb")
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))

    def sentinel(self) -> Redis:
        return Redis(port=self.ports["sentinel"], socket_timeout=1, decode_responses=True)

    def primary_port(self) -> int | None:
        try:
            host_port = self.sentinel().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        except Exception:
            return None
        return int(host_port[1]) if host_port else None

    def _replicas_known(self) -> bool:
        try:
            replicas = self.sentinel().execute_command("SENTINEL", "REPLICAS", MASTER)
            in_sync = Redis(port=self.ports["replica"]).info("replication").get("master_link_status") == "up"
        except Exception:
            return False
        return bool(replicas) and in_sync

    def fail_over(self) -> None:
        self.sentinel().execute_command("SENTINEL", "FAILOVER", MASTER)
        wait_for(lambda: self.primary_port() == self.ports["replica"], timeout=20, interval=0.1)

    def kill_primary(self) -> None:
        """kill -9 of the primary: Sentinel sees it down (1 s), elects the replica, and names it."""
        primary = self.processes[0]
        primary.kill()
        primary.wait(10)
        wait_for(lambda: self.primary_port() == self.ports["replica"], timeout=30, interval=0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(10)
