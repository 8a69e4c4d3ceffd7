"""USSD over SMPP beside USSD over Africa's Talking's HTTP, in one run (`make bench-transports`).

The same journeys (a full registration per dial, the language remembered after the first) are
driven through both transports of the one conversation: N phones posting AT's form to the app
under gunicorn, and N phones dialling through an operator's USSD gateway that the load driver
plays (SMPP 3.4 on loopback), which the SMPP connector (`flask smpp-connector`) binds to. Both
sides get the same share of the machine: as many connector processes as gunicorn workers, as many
conversation threads per connector as threads per worker. Segments run ABBA, as `ussd_steps`.

It reports p50/p99 step time at N sessions (think time between steps, as people type) and
saturated steps/s (no think time) for each, and the ratio SMPP/HTTP: the connector must not be
the bottleneck, so the target is a ratio of at least 1.0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.options import add_phones, add_servers, add_services, check_phones, run
from bench.ussd_load import Segment, Watch
from bench.ussd_steps import (
    PHASES,
    ROOT,
    Server,
    _fmt,
    _stop_on_sigterm,
    drive,
    free_port,
    git_revision,
    server_env,
    summarise,
    throwaway,
    total_errors,
)

RESULTS = Path(__file__).resolve().parent / "results" / "ussd_transports.json"
TARGETS = ("smpp", "app")  # the ratio is SMPP over AT's HTTP
ORDER = ("smpp", "app", "app", "smpp")
TARGET_RATIO = 1.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.ussd_transports", description=__doc__.split("\n\n")[0])
    add_phones(p, phones=100, duration=15, per="transport and phase")
    add_servers(p, "the app, and SMPP connectors")
    add_services(p, redis_db=13, results=RESULTS)
    p.add_argument(
        "--logs", type=Path, default=None, help="copy the app's and connectors' logs here at the end"
    )
    args = p.parse_args(argv)
    check_phones(p, args)
    if args.concurrency > 255 or args.workers < 1:
        p.error("need --concurrency <= 255 (one its_session_info octet) and --workers >= 1")
    return args


class Connectors:
    """The SMPP connector processes, in one process group, binding to the driver's gateway."""

    def __init__(self, env: dict[str, str], count: int, log: Path) -> None:
        self.env, self.count, self.log = env, count, log
        self.procs: list[subprocess.Popen[bytes]] = []
        self.group = 0

    def start(self) -> None:
        with self.log.open("wb") as out:
            for _ in range(self.count):
                proc = subprocess.Popen(
                    [sys.executable, "-m", "flask", "--app", "app", "smpp-connector"],
                    cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                    process_group=self.group,
                )  # fmt: skip
                self.group = self.group or proc.pid  # the first leads the group the others join
                self.procs.append(proc)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@contextlib.contextmanager
def running(server: Server, connectors: Connectors) -> Any:
    try:
        server.start()
        connectors.start()
        yield
    finally:
        connectors.stop()
        server.terminate()
        server.wait_stopped()


def copy_logs(workdir: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, to / log.name)


def plan(args: argparse.Namespace, ports: dict[str, int]) -> list[Segment]:
    segments = []
    for phase, think in (("saturation", 0.0), ("latency", args.think)):
        for i, target in enumerate(ORDER):
            index = len(segments)
            segments.append(Segment(
                phase=phase, target=target, port=ports[target], concurrency=args.concurrency,
                warmup=args.warmup, duration=args.duration / 2, think=think, jitter=args.jitter,
                number_base=index * args.concurrency * 1000, seed=index + 1, round=i // 2 + 1,
            ))  # fmt: skip
    return segments


def report(figures: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [f"ussd_transports: {args.concurrency} sessions, {args.workers}x{args.threads} each side, "
             f"{args.database}"]  # fmt: skip
    for phase in PHASES:
        for target, label in (("smpp", "SMPP"), ("app", "AT HTTP")):
            f = figures[phase][target]
            cpu = f["cpu"].get("server_ms_per_step")
            lines.append(
                f"  {phase:<10} {label:<8} {f['steps_per_s']:8.0f} steps/s  p50 {_fmt(f['p50_ms'])} ms"
                f"  p99 {_fmt(f['p99_ms'])} ms  server CPU {_fmt(cpu, 2)} ms/step  errors {f['errors']}"
            )
    ratio = figures["saturation"]["ratio"]
    met = ratio is not None and ratio >= TARGET_RATIO
    lines.append(f"saturation SMPP/HTTP {_fmt(ratio, 2)} (target >= {TARGET_RATIO}: {'met' if met else 'NOT met'})"
                 f"; latency@{args.concurrency} p99 SMPP {_fmt(figures['latency']['smpp']['p99_ms'])} ms,"
                 f" HTTP {_fmt(figures['latency']['app']['p99_ms'])} ms")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    with contextlib.ExitStack() as stack:
        workdir, database_url, redis_url = throwaway(stack, args.database, args.pg_admin_url, args.redis_db)
        if args.logs:
            stack.callback(copy_logs, workdir, args.logs)  # runs once the processes have stopped
        smpp_port = free_port()
        link = (f"smpp://sira:sira@127.0.0.1:{smpp_port}?name=bench&network=61002&window={args.concurrency}"
                "&reconnect_min=0.2&reconnect_max=1")  # fmt: skip
        env = server_env(database_url, redis_url, args.workers, args.threads, USSD_RATE_LIMIT="1000000",
                         SMPP_CONNECTIONS=link, SMPP_WORKERS=str(args.threads))  # fmt: skip
        app = Server("app", "app:create_app()", env, workdir / "app.log")
        connectors = Connectors(env, args.workers, workdir / "smpp.log")
        stack.enter_context(running(app, connectors))
        app.wait_ready("/healthz", 200)
        assert app.proc is not None
        print(
            f"ussd_transports: AT on :{app.port}, SMPP gateway on :{smpp_port}", file=sys.stderr, flush=True
        )
        watch = Watch(pgids={"app": app.proc.pid, "smpp": connectors.group},
                      db_name=database_url.rsplit("/", 1)[1] if args.database == "postgresql" else None)  # fmt: skip
        try:
            tallies = drive(plan(args, {"app": app.port, "smpp": smpp_port}), watch, smpp_binds=args.workers)
        except RuntimeError:
            print((workdir / "smpp.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
    figures = summarise(tallies, TARGETS)
    print(report(figures, args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"revision": git_revision(), "settings": {
        k: str(v) for k, v in vars(args).items()}, "figures": figures}, indent=2))  # fmt: skip
    print(f"results: {args.output}", file=sys.stderr)
    return 1 if total_errors(figures, TARGETS) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run(main, "ussd_transports")
