"""`make bench-admin` still runs end to end: a few hundred referrals on SQLite, no speed asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BENCH_REDIS_DB, ROOT

pytestmark = pytest.mark.process  # its own processes (worker, gunicorn): not in `make check`


def test_admin_pages_bench_fills_serves_and_times_every_page(tmp_path: Path) -> None:
    output = tmp_path / "admin_pages.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.admin_pages", "--database", "sqlite", "--referrals", "300",
         "--requests", "2", "--exports", "1", "--workers", "1", "--threads", "2", "--redis-db", BENCH_REDIS_DB,
         "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("admin_pages: slowest page p95 ")
    results = json.loads(output.read_text())
    assert results["errors"] == 0 and results["rows"]["referral"] == 300
    assert len(results["pages"]) >= 15
    for name, page in results["pages"].items():
        assert page["p50_ms"] is not None and page["baseline"]["p50_ms"] is not None, name
    assert results["export"]["bytes"] > 300 * 40  # a line per referral
