"""`make bench` still runs end to end: tiny settings, SQLite, no speed asserted (ratios are read, not tested)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_ussd_steps_bench_runs_without_errors_and_writes_its_results(tmp_path: Path) -> None:
    output = tmp_path / "ussd_steps.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_steps", "--concurrency", "3", "--duration", "0.6",
         "--warmup", "0.2", "--think", "0.05", "--database", "sqlite", "--redis-db", "13",
         "--workers", "1", "--threads", "2", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ussd_steps: app " in done.stdout.splitlines()[-1]
    results = json.loads(output.read_text())
    assert results["errors"] == 0
    for phase in ("saturation", "latency"):
        for target in ("app", "bare"):
            assert results[phase][target]["samples"] > 0, (phase, target)
