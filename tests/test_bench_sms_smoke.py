"""`python -m bench.sms_delivery` still runs end to end: tiny settings, SQLite, no speed asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BENCH_REDIS_DB, ROOT

pytestmark = pytest.mark.process  # its own processes (worker, gunicorn): not in `make check`


def test_sms_delivery_bench_runs_without_errors_and_writes_its_results(tmp_path: Path) -> None:
    output = tmp_path / "sms_delivery.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.sms_delivery", "--rate", "2", "--duration", "1", "--warmup", "0",
         "--settle", "5", "--jobs", "4", "--database", "sqlite", "--redis-db", BENCH_REDIS_DB,
         "--web-workers", "1", "--web-threads", "2", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sms_delivery: referral→gateway " in done.stdout.splitlines()[-1]
    results = json.loads(output.read_text())
    assert results["errors"] == 0
    assert results["latency"]["provider_alert"]["count"] == 2
    for kind in ("sms", "bare"):
        assert results["throughput"][kind]["jobs_per_s"] > 0, kind
