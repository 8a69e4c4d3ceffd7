"""`python -m bench.sms_delivery` still runs end to end: tiny settings, SQLite, no speed asserted.

What is asserted is the shape of the answer: every route measured, each with its SMS and bare
jobs/s and a ratio, and no error (a bare job whose call the gateway did not accept is one).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.sms_delivery import GATEWAY_LABELS, ROUTES, kannel_installed, parse_args
from tests.conftest import BENCH_REDIS_DB, ROOT


def _routes_here() -> list[str]:
    """Every route; Kannel only where it is installed, except under CI, which must run it."""
    return [r for r in ROUTES if r != "kannel" or kannel_installed() or os.environ.get("CI")]


@pytest.mark.process  # its own processes (worker, gunicorn, emulator, Kannel): not in `make check`
def test_sms_delivery_bench_measures_each_route_beside_its_bare_job(tmp_path: Path) -> None:
    output = tmp_path / "sms_delivery.json"
    routes = _routes_here()
    done = subprocess.run(
        [sys.executable, "-m", "bench.sms_delivery", "--rate", "2", "--duration", "1", "--warmup", "0",
         "--settle", "5", "--jobs", "4", "--database", "sqlite", "--redis-db", BENCH_REDIS_DB,
         "--web-workers", "1", "--web-threads", "2", "--routes", ",".join(routes), "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "sms_delivery: referral→gateway " in lines[-1]
    for route in routes:
        # The table's row: the route, SMS jobs/s, bare jobs/s, the ratio, the verdict.
        row = re.compile(
            rf"^  {re.escape(GATEWAY_LABELS[route])}\s+\d+\.\d\s+\d+\.\d\s+(\d+\.\d\d)\s+(ok|MISSED)\b"
        )
        assert any(row.match(line) for line in lines), f"no row for {route}:\n{done.stdout}"
        assert re.search(rf"\b{route} \d+/\d+ jobs/s ratio \d+\.\d\d\b", lines[-1]), lines[-1]
    results = json.loads(output.read_text())
    assert results["errors"] == 0
    assert results["latency"]["provider_alert"]["count"] == 2
    assert list(results["routes"]) == routes
    for route, figures in results["routes"].items():
        for side in ("sms_jobs_per_s", "bare_jobs_per_s"):
            assert figures[side] > 0, (route, side)
        assert figures["ratio"] > 0, route
        for side in ("sms", "bare"):
            assert results["throughput"]["routes"][route][side]["jobs"] == 4, (route, side)


@pytest.mark.parametrize("routes", ["at,sms", "", "orange,orange"])
def test_sms_delivery_bench_refuses_routes_it_does_not_know(
    routes: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--routes", routes])
    assert exit_.value.code == 2
    assert "--routes: one or more of africastalking, kannel, orange, each once" in capsys.readouterr().err
