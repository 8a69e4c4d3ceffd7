"""`make bench` still runs end to end: tiny settings, SQLite, no speed asserted (ratios are read, not tested)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis

from bench.bare_app import create_app as bare_app
from tests.conftest import BENCH_REDIS_DB, REDIS_URL, ROOT
from tests.faults.fronts import nginx_binary

pytestmark = pytest.mark.process  # its own processes (worker, gunicorn): not in `make check`


def tiny_ussd_steps(tmp_path: Path, *flags: str) -> tuple[str, dict]:
    """`bench.ussd_steps` on tiny settings and SQLite: its report and its JSON (it must succeed)."""
    output = tmp_path / "ussd_steps.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_steps", *flags, "--concurrency", "3", "--duration", "0.6",
         "--warmup", "0.2", "--think", "0.05", "--database", "sqlite", "--redis-db", BENCH_REDIS_DB,
         "--workers", "1", "--threads", "2", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, json.loads(output.read_text())


def test_ussd_steps_bench_runs_without_errors_and_writes_its_results(tmp_path: Path) -> None:
    report, results = tiny_ussd_steps(tmp_path)
    assert "ussd_steps: app " in report.splitlines()[-1]
    assert results["errors"] == 0
    for phase in ("saturation", "latency"):
        for target in ("app", "bare"):
            assert results[phase][target]["samples"] > 0, (phase, target)


def test_ussd_instructions_counts_the_steps_of_this_checkout_and_of_a_baseline(tmp_path: Path) -> None:
    """Without valgrind (--timer cpu, seconds): the journeys, the hand-over and the baseline's checkout."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_instructions", "--timer", "cpu", "--phones", "2", "--rounds", "1",
         "--redis-db", BENCH_REDIS_DB, "--baseline", "HEAD"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"ussd_instructions: this checkout: 20 steps, [0-9.]+ CPU ms a step", lines[0]), lines
    assert re.fullmatch(r"ussd_instructions: HEAD: 20 steps, [0-9.]+ CPU ms a step", lines[1]), lines
    assert lines[2].startswith("ussd_instructions: this checkout / HEAD: ")


def test_ussd_instructions_counts_a_step_s_instructions_under_callgrind(tmp_path: Path) -> None:
    """The count itself: instrumentation switched on for the measured steps only, and the dump read.
    A step of the webhook runs about 1.3 million instructions; a wrong dump or an uncounted window
    would read zero or hundreds of millions."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_instructions", "--phones", "1", "--rounds", "1",
         "--redis-db", BENCH_REDIS_DB],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.fullmatch(r"ussd_instructions: this checkout: 10 steps, ([0-9,.]+) instructions a step",
                         done.stdout.splitlines()[0])  # fmt: skip
    assert found, done.stdout
    assert 200_000 < float(found.group(1).replace(",", "")) < 20_000_000


def test_ussd_steps_measures_a_change_against_an_earlier_revision_served_side_by_side(tmp_path: Path) -> None:
    report, results = tiny_ussd_steps(tmp_path, "--baseline", "HEAD")
    assert "baseline: the app at HEAD" in report
    assert "target >=" not in report  # the targets compare with the bare endpoint, not with the app
    assert results["errors"] == 0 and results["latency"]["bare"]["samples"] > 0
    listed = subprocess.run(["git", "worktree", "list"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "baseline" not in listed.stdout  # the checkout is removed with the run


def test_the_bare_endpoint_that_keeps_sessions_writes_one_redis_key_a_step(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    client = bare_app(keeps_session=True).test_client()
    for text in ("", "1", "1*3"):
        reply = client.post(
            "/ussd", data={"sessionId": "bench-7", "phoneNumber": "+22370000001", "text": text}
        )
        assert reply.get_data(as_text=True) == "CON hello"
    assert redis.get("bench:bare:bench-7") == b"1*3" and 0 < redis.ttl("bench:bare:bench-7") <= 60
    assert len(redis.keys("bench:bare:*")) == 1
    monkeypatch.delenv("REDIS_URL")
    bare_app().test_client().post("/ussd", data={"sessionId": "bench-8", "text": ""})  # needs no Redis
    assert not redis.exists("bench:bare:bench-8")


def test_ussd_steps_against_the_session_keeping_bare_endpoint_prints_no_targets(tmp_path: Path) -> None:
    report, results = tiny_ussd_steps(tmp_path, "--bare", "session")
    assert "bare: the bare endpoint also writes one Redis key a step" in report
    assert "target >=" not in report and "target <" not in report
    assert results["errors"] == 0 and results["saturation"]["bare"]["samples"] > 0
    assert results["settings"]["bare"] == "session"


def test_ussd_steps_takes_either_a_baseline_or_a_bare_endpoint(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_steps", "--baseline", "HEAD", "--bare", "session",
         "--output", str(tmp_path / "out.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--baseline serves an earlier app in place of the bare endpoint" in done.stderr


def test_ussd_steps_refuses_a_revision_that_does_not_exist(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_steps", "--baseline", "no-such-revision", "--database", "sqlite",
         "--redis-db", BENCH_REDIS_DB, "--output", str(tmp_path / "out.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "cannot check out no-such-revision" in done.stderr


def test_ussd_transports_bench_drives_smpp_and_http_side_by_side_without_errors(tmp_path: Path) -> None:
    output = tmp_path / "ussd_transports.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.ussd_transports", "--concurrency", "3", "--duration", "0.6",
         "--warmup", "0.2", "--think", "0.05", "--database", "sqlite", "--redis-db", BENCH_REDIS_DB,
         "--workers", "1", "--threads", "2", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "saturation SMPP/HTTP" in done.stdout.splitlines()[-1]
    figures = json.loads(output.read_text())["figures"]
    for phase in ("saturation", "latency"):
        for target in ("smpp", "app"):
            assert figures[phase][target]["samples"] > 0 and figures[phase][target]["errors"] == 0, (
                phase,
                target,
            )


def test_under_attack_bench_reports_each_segment_and_the_ratio_to_the_quiet_p99(tmp_path: Path) -> None:
    """`make bench-attack` runs tiny: the report's shape (segments, p50/p99, ratio), never its timings."""
    nginx_binary()  # skipped without nginx, failed under CI
    output = tmp_path / "under_attack.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.under_attack", "--concurrency", "2", "--duration", "1", "--warmup", "0.2",
         "--rounds", "2",
         "--think", "0.05", "--slow-clients", "4", "--flooders", "1", "--database", "sqlite",
         "--redis-db", BENCH_REDIS_DB, "--workers", "1", "--threads", "2", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for segment in (
        "quiet 1 ",
        "attack 1 ",
        "quiet 2 ",
        "attack 2 ",
        "quiet 3 ",
        "quiet pooled ",
        "attack pooled ",
    ):
        assert any(line.startswith(segment) for line in lines), (segment, done.stdout)
    assert re.fullmatch(
        r"under_attack: quiet p50 [\d.]+ ms p99 [\d.]+ ms; attack p50 [\d.]+ ms p99 [\d.]+ ms; "
        r"attack/quiet p99 [\d.]+ \(target <= 2: (ok|MISSED)\); errors 0",
        lines[-1],
    ), lines[-1]
    results = json.loads(output.read_text())
    assert results["errors"] == 0 and results["ratio_p99"] > 0
    segments = results["segments"]
    for name in ("quiet 1", "attack 1", "quiet 2", "attack 2", "quiet 3"):
        assert segments[name]["samples"] > 0 and segments[name]["p50_ms"] <= segments[name]["p99_ms"], name
    for kind, rounds in (("quiet", (1, 2, 3)), ("attack", (1, 2))):
        assert segments[f"{kind} pooled"]["samples"] == sum(
            segments[f"{kind} {i}"]["samples"] for i in rounds
        )
    assert len(results["round_ratios_p99"]) == 2 and results["median_round_ratio_p99"] > 0
    assert "attack/quiet p99 per round" in done.stdout
    attack = results["attack"]
    assert attack["slow_clients"] == attack["slow_held"] == 4 and attack["slow_bytes_sent"] > 0
    assert sum(attack["login_flood_answers"].values()) > 0
