"""USSD step benchmark: the real webhook beside a bare Flask endpoint, served the same way.

`python -m bench.ussd_steps` (what `make bench` runs) prepares a fresh database and a dedicated
Redis db, serves `app:create_app()` and `bench.bare_app:create_app()` with gunicorn and the same
gunicorn.conf.py, worker and thread counts, then drives N simulated phones from another process
(bench/ussd_load.py) through two phases, each against both servers in the order app, bare, bare,
app so that drift over the run weighs on both alike:

- saturation: closed loop, no think time: throughput in steps/s, and app/bare;
- latency: N phones that think between steps like people typing: p50/p95/p99 step time.

Figures are ratios against the baseline measured in the same run, because absolute numbers
depend on the machine; targets (PRODUCT.md) are printed, never asserted. The exit status is 1
only if a step failed (non-200, a reply without CON/END, a broken connection, a wrong screen).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.options import REDIS_BASE, add_phones, add_servers, add_services, check_phones, run
from bench.ussd_load import Segment, Watch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "ussd_steps.json"
TARGET_RATIO = 0.5  # app throughput at least half the bare endpoint's
TARGET_P99_MS = 50.0  # at N concurrent sessions
BARES = {"plain": "bench.bare_app:create_app()", "session": "bench.bare_app:create_app(keeps_session=True)"}
ORDER = ("app", "bare", "bare", "app")  # ABBA cancels a linear drift (thermal, cache, WAL growth)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ussd_steps", description=__doc__.split("\n\n")[0])
    add_phones(p, phones=100, duration=15, per="server and phase")
    add_servers(p, "both servers")
    add_services(p, redis_db=14, results=RESULTS)
    p.add_argument(
        "--bare",
        choices=BARES,
        default="plain",
        help="the bare endpoint: plain (parses the form), or session (also writes one Redis key a step, "
        "as the least a service that keeps sessions in Redis does; the targets then do not apply)",
    )
    p.add_argument(
        "--baseline",
        metavar="REV",
        help="serve the app at git revision REV as the baseline instead of the bare endpoint, to "
        "measure a change side by side (its migrations must match this checkout's)",
    )
    args = p.parse_args(argv)
    check_phones(p, args)
    if args.baseline and args.bare != "plain":
        p.error("--baseline serves an earlier app in place of the bare endpoint: it takes no --bare")
    return args


# -- services -------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(kind: str, admin_url: str, workdir: Path) -> Iterator[str]:
    """A migrated database that lives for this run only, so figures never depend on old rows."""
    from alembic import command as alembic
    from sqlalchemy import create_engine, text

    from cli import alembic_config

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'sira_bench.db'}"
        alembic.upgrade(alembic_config(url), "head")
        yield url
        return
    name = f"sira_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        alembic.upgrade(alembic_config(url), "head")
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def fresh_redis(db: int) -> Iterator[str]:
    """A Redis db number of our own, empty before and after, so sessions never collide.

    Empty, but with a memory older than any session, as a Redis that has run a while: a flushed
    Redis makes every dial of the next USSD_SESSION_TTL_SECONDS ask the database whether a session
    was lost (services/converse.py's `_orphaned`), which is what a restart costs, not a step's
    steady cost (tests/conftest.py's `redis` fixture does the same).
    """
    from redis import Redis

    from infra import keys

    url = f"{REDIS_BASE}/{db}"
    client = Redis.from_url(url)
    client.flushdb()
    client.set(keys.REDIS_BORN, "0")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def throwaway(
    stack: contextlib.ExitStack, database: str, pg_admin_url: str, redis_db: int, prefix: str = "sira_bench_"
) -> tuple[Path, str, str]:
    """A working folder, a migrated database and an empty Redis db, all gone when `stack` closes:
    (folder, database URL, Redis URL)."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    database_url = stack.enter_context(fresh_database(database, pg_admin_url, workdir))
    return workdir, database_url, stack.enter_context(fresh_redis(redis_db))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One gunicorn master (and its workers) in a process group of its own, stopped on exit."""

    def __init__(self, name: str, app_spec: str, env: dict[str, str], log: Path, cwd: Path = ROOT) -> None:
        self.name, self.app_spec, self.log, self.cwd = name, app_spec, log, cwd
        self.port = free_port()
        self.env = {**env, "BIND": f"127.0.0.1:{self.port}"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            # A session of its own: Ctrl-C reaches us, and we stop the servers in order.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.app_spec],
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, path: str, want: int | None, timeout: float = 40) -> None:
        """Until `path` answers (with `want`, if given); fail with the server's log otherwise."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", path)
                status = conn.getresponse().status
                conn.close()
                if want is None or status == want:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server did not answer in {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # gunicorn's graceful stop takes its workers with it

    def wait_stopped(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group we created for this master
            self.proc.wait(5)


@contextlib.contextmanager
def worktree(revision: str, path: Path) -> Iterator[Path]:
    """A detached checkout of `revision`, removed on exit however the run ends: the baseline
    of a side-by-side run."""
    git = ["git", "-C", str(ROOT)]
    try:
        try:
            subprocess.run([*git, "worktree", "add", "--detach", str(path), revision], check=True,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"cannot check out {revision}: {exc.stderr.strip()}") from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"checking out {revision} took over a minute") from None
        yield path
    finally:
        for cleanup in (["worktree", "remove", "--force", "--force", str(path)], ["worktree", "prune"]):
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([*git, *cleanup], capture_output=True, timeout=60)


@contextlib.contextmanager
def served(servers: list[Server]) -> Iterator[None]:
    """Start the servers; stop them all, in parallel, however the run ends."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait_stopped()


# -- the run --------------------------------------------------------------------------


def plan(args: argparse.Namespace, ports: dict[str, int]) -> list[Segment]:
    """Both phases, each ABBA; every segment dials from its own block of numbers."""
    phases = (("saturation", 0.0), ("latency", args.think))
    segments = []
    for phase, think in phases:
        for i, target in enumerate(ORDER):
            index = len(segments)
            segments.append(
                Segment(
                    phase=phase,
                    target=target,
                    port=ports[target],
                    concurrency=args.concurrency,
                    warmup=args.warmup,
                    duration=args.duration / 2,  # two segments per server and phase
                    think=think,
                    jitter=args.jitter,
                    number_base=index * args.concurrency * 1000,
                    seed=index + 1,
                    round=i // 2 + 1,
                )
            )
    return segments


def drive(segments: list[Segment], watch: Watch, smpp_binds: int = 0) -> list[dict[str, Any]]:
    """Run the load driver in its own process; it reports progress on stderr, results on stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.ussd_load"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = proc.communicate(
            json.dumps(
                {"segments": [asdict(s) for s in segments], "watch": asdict(watch), "smpp_binds": smpp_binds}
            )
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"load driver failed ({proc.returncode})")
    return json.loads(out)


def count_logged_steps(database_url: str, redis_url: str) -> int:
    """Steps the app logged: rows in ussd_step, and lines still in the transcript buffer (no worker
    flushes it during the run): proof that the steps measured were really recorded."""
    from redis import Redis
    from sqlalchemy import create_engine, func, select

    from infra.keys import STEP_BUFFER
    from models import UssdStep

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = int(conn.scalar(select(func.count()).select_from(UssdStep)) or 0)
    finally:
        engine.dispose()
    with Redis.from_url(redis_url) as redis:
        return rows + int(redis.llen(STEP_BUFFER))


# -- figures --------------------------------------------------------------------------

PHASES = ("saturation", "latency")
TARGETS = ("app", "bare")
ERROR_KINDS = ("non_200", "bad_reply", "transport", "off_journey")
NOISY_OTHER_PCT = 20.0  # CPU of processes outside the benchmark, in % of one core


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None without samples)."""
    if not values:
        return None
    rank = max(1, round(q / 100 * len(values) + 0.5 - 1e-9))
    return values[min(rank, len(values)) - 1]


def _cpu(mine: list[dict[str, Any]], target: str, steps: int, window: float) -> dict[str, Any]:
    """Who used the CPU during the windows: ms per step for the server and its services, % for others."""
    used: dict[str, float] = {}
    for t in mine:
        for k, v in t["cpu_s"].items():
            used[k] = used.get(k, 0.0) + v
    if not used or not window:
        return {}
    ours = sum(v for k, v in used.items() if k != "machine")
    per_step = {
        k: used.get(k, 0.0) * 1000 / steps if steps else None for k in (target, "db", "redis", "driver")
    }
    return {
        "server_ms_per_step": per_step[target],
        "db_ms_per_step": per_step["db"],
        "redis_ms_per_step": per_step["redis"],
        "driver_ms_per_step": per_step["driver"],
        "machine_pct": used["machine"] * 100 / window,
        "other_pct": max(0.0, used["machine"] - ours) * 100 / window,
    }


def summarise(tallies: list[dict[str, Any]], targets: tuple[str, str] = TARGETS) -> dict[str, Any]:
    """Merge the segments of each (phase, server): throughput, percentiles, CPU, error counts;
    `ratio` is the first target's steps/s over the second's."""
    out: dict[str, Any] = {}
    for phase in PHASES:
        out[phase] = {}
        for target in targets:
            mine = [t for t in tallies if t["phase"] == phase and t["target"] == target]
            lat = sorted(x for t in mine for x in t["latencies_ms"])
            window = sum(t["window_s"] for t in mine)
            steps = sum(t["steps_in_window"] for t in mine)
            errors = {k: sum(t[k] for t in mine) for k in ERROR_KINDS}
            out[phase][target] = {
                "steps_per_s": steps / window if window else 0.0,
                "rounds_steps_per_s": [t["steps_in_window"] / t["window_s"] for t in mine],
                "samples": len(lat),
                "p50_ms": percentile(lat, 50),
                "p95_ms": percentile(lat, 95),
                "p99_ms": percentile(lat, 99),
                "max_ms": lat[-1] if lat else None,
                "responses": sum(t["responses"] for t in mine),
                "sessions_done": sum(t["sessions_done"] for t in mine),
                "cpu": _cpu(mine, target, steps, window),
                "errors": sum(errors.values()),
                "error_kinds": errors,
                "error_examples": [e for t in mine for e in t["examples"]][:5],
            }
        app, bare = (out[phase][t]["steps_per_s"] for t in targets)
        out[phase]["ratio"] = app / bare if bare else None
    return out


def total_errors(figures: dict[str, Any], targets: tuple[str, str] = TARGETS) -> int:
    return sum(figures[p][t]["errors"] for p in PHASES for t in targets)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(figures: dict[str, Any], args: argparse.Namespace) -> str:
    """A compact table and the one summary line that `make bench` readers look for."""
    sat, lat = figures["saturation"], figures["latency"]
    n = args.concurrency
    ratio, p99 = sat["ratio"], lat["app"]["p99_ms"]

    def row(label: str, cells: list[str], relative: str = "", note: str = "") -> str:
        return f"{label:<30}{cells[0]:>16}{cells[1]:>16}{relative:>10}   {note}".rstrip()

    def each(phase: dict[str, Any], pick: Callable[[dict[str, Any]], str]) -> list[str]:
        return [pick(phase[target]) for target in TARGETS]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    compared = _compared(args)
    rows = [
        f"ussd_steps: {n} phones, {args.workers} workers x {args.threads} threads, {args.database}, "
        f"{args.duration:g} s per server and phase (app, bare, bare, app; {args.warmup:g} s warm-up each)",
        *([compared] if compared else []),
        row("", list(TARGETS), "app/bare"),
        row(
            "saturation steps/s",
            each(sat, lambda f: _fmt(f["steps_per_s"], 0)),
            _fmt(ratio, 2),
            f"target >= {TARGET_RATIO}: {verdict(ratio is not None and ratio >= TARGET_RATIO)}"
            * (not compared),
        ),
        row("saturation p50 / p99 ms", each(sat, lambda f: f"{_fmt(f['p50_ms'])} / {_fmt(f['p99_ms'])}")),
    ]
    for q in ("p50", "p95", "p99"):
        note = f"target < {TARGET_P99_MS:g}: {verdict(p99 is not None and p99 < TARGET_P99_MS)}" * (
            not compared
        )
        rows.append(
            row(f"latency@{n} {q} ms", each(lat, lambda f, q=q: _fmt(f[q + "_ms"])), "", note * (q == "p99"))
        )
    rows.append(row(f"latency@{n} steps/s", each(lat, lambda f: _fmt(f["steps_per_s"], 0))))
    for key, label in (("server", "server"), ("db", "database"), ("redis", "redis")):
        rows.append(
            row(
                f"saturation {label} CPU ms/step",
                each(sat, lambda f, k=key: _fmt(f["cpu"].get(k + "_ms_per_step"), 2)),
            )
        )
    rows.append(
        row(
            "other load, % of a core",
            each(sat, lambda f: _fmt(f["cpu"].get("other_pct"), 0)),
            "",
            f"latency phase: {' / '.join(each(lat, lambda f: _fmt(f['cpu'].get('other_pct'), 0)))}",
        )
    )
    rows.append(row("errors", [str(sat[t]["errors"] + lat[t]["errors"]) for t in TARGETS]))
    others = [figures[p][t]["cpu"].get("other_pct") or 0.0 for p in PHASES for t in TARGETS]
    if max(others) > NOISY_OTHER_PCT:
        rows.append(
            f"note: other processes used up to {max(others):.0f}% of a core during a window; "
            "rerun on a quiet machine before trusting small differences"
        )
    for phase in PHASES:
        for target in TARGETS:
            rows += [f"  ! {phase} {target}: {e}" for e in figures[phase][target]["error_examples"]]
    rows.append(
        f"ussd_steps: app {sat['app']['steps_per_s']:.0f} steps/s, bare {sat['bare']['steps_per_s']:.0f} "
        f"steps/s, ratio {_fmt(ratio, 2)}; latency@{n} p50 {_fmt(lat['app']['p50_ms'])} ms "
        f"p99 {_fmt(p99)} ms (bare p99 {_fmt(lat['bare']['p99_ms'])} ms); errors {total_errors(figures)}"
    )
    return "\n".join(rows)


def _compared(args: argparse.Namespace) -> str | None:
    """What stands in for the bare endpoint, when not the one the targets are set against."""
    if args.baseline:
        return f"baseline: the app at {args.baseline} in place of the bare endpoint (targets do not apply)"
    if args.bare == "session":
        return "bare: the bare endpoint also writes one Redis key a step (targets do not apply)"
    return None


def git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def run_header(benchmark: str, args: argparse.Namespace) -> dict[str, Any]:
    """What every benchmark's JSON starts with: which one, when (UTC), at what revision, on what
    machine, with which options (not the database's admin URL, which may hold a password)."""
    return {
        "benchmark": benchmark,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "pg_admin_url"
        },
    }


def save_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def write_json(path: Path, figures: dict[str, Any], args: argparse.Namespace, logged_steps: int) -> None:
    doc = {
        **run_header("ussd_steps", args),
        "targets": {"ratio_min": TARGET_RATIO, "latency_p99_max_ms": TARGET_P99_MS},
        "ratio": figures["saturation"]["ratio"],
        "latency_p99_ms": figures["latency"]["app"]["p99_ms"],
        "errors": total_errors(figures),
        "app_steps_logged": logged_steps,
        **figures,
    }
    save_json(path, doc)


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: servers stopped, database dropped


def server_env(database_url: str, redis_url: str, workers: int, threads: int, **extra: str) -> dict[str, str]:
    """What every benchmark's servers run with: a fresh database and Redis, fresh secrets each run."""
    return {
        **os.environ,
        "ENV": "development",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "PHONE_HASH_KEY": secrets.token_hex(32),
        "SECRET_KEY": secrets.token_hex(32),
        "ENCRYPTION_KEYS": f"bench:{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()}",
        "WEB_CONCURRENCY": str(workers),
        "WEB_THREADS": str(threads),
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with contextlib.ExitStack() as stack:
        workdir, database_url, redis_url = throwaway(stack, args.database, args.pg_admin_url, args.redis_db)
        # Simulated phones step far faster than people: a limit never reached keeps its count measured.
        env = server_env(database_url, redis_url, args.workers, args.threads, USSD_RATE_LIMIT="1000000")
        app = Server("app", "app:create_app()", env, workdir / "app.log")
        if args.baseline:
            checkout = stack.enter_context(worktree(args.baseline, workdir / "baseline"))
            bare = Server("bare", "app:create_app()", env, workdir / "bare.log", cwd=checkout)
        else:
            bare = Server("bare", BARES[args.bare], env, workdir / "bare.log")
        stack.enter_context(served([app, bare]))
        app.wait_ready("/healthz", 200)
        bare.wait_ready("/healthz" if args.baseline else "/", 200 if args.baseline else None)
        print(
            f"ussd_steps: app on :{app.port}, bare on :{bare.port}; {args.concurrency} phones",
            file=sys.stderr,
            flush=True,
        )
        assert app.proc is not None and bare.proc is not None
        watch = Watch(
            pgids={"app": app.proc.pid, "bare": bare.proc.pid},  # each master leads its own group
            db_name=database_url.rsplit("/", 1)[1] if args.database == "postgresql" else None,
        )
        tallies = drive(plan(args, {"app": app.port, "bare": bare.port}), watch)
        logged = count_logged_steps(database_url, redis_url)
    figures = summarise(tallies)
    print(report(figures, args))
    write_json(args.output, figures, args, logged)
    print(f"results: {args.output}", file=sys.stderr)
    return 1 if total_errors(figures) else 0


if __name__ == "__main__":
    run(main, "ussd_steps")
