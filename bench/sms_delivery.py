"""SMS delivery benchmark: referral-to-gateway time, and SMS jobs/s per route beside a bare RQ job.

`python -m bench.sms_delivery` prepares a fresh database (seeded with the sample directory), a
dedicated Redis db, the local emulator (Africa's Talking's and Orange's faces) and, for the
`kannel` route, a real Kannel with a fake SMSC; serves `app:create_app()` with gunicorn, then:

- phase A, latency: ONE worker (`flask --app app worker`, its cron included) while returnees make
  referrals over the real USSD webhook at a steady rate; for each referral, the time from the END
  reply reaching the phone to the emulator accepting the provider alert (and the returnee's notice);
- phase B, throughput, for each route of `--routes` (SMS_GATEWAY set to it): M outbox rows with
  their send jobs queued, emptied by ONE burst worker (`flask --app app worker --burst`, RQ's
  SimpleWorker), beside M bare jobs (`bench.rq_baseline.bare_send`: the same HTTP call with the
  same client to the same endpoint, and nothing else) emptied by a SimpleWorker built the same way,
  in the order sms, bare, bare, sms: jobs/s and the ratio sms/bare per route.

Targets are printed, never asserted; the exit status is 1 only if something failed (a USSD step,
an SMS that never reached the gateway, a failed job, bare ones included).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from bench.options import REDIS_BASE, add_services, run
from bench.rq_baseline import BARE_QUEUE
from bench.ussd_load import HttpConnection, bench_phone
from bench.ussd_steps import (
    Server,
    free_port,
    percentile,
    run_header,
    save_json,
    served,
    server_env,
    throwaway,
)
from gateway.base import redact_numbers
from gateway.emulator import orange as orange_emulator
from infra.referral_code import codes_in

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "sms_delivery.json"
TARGET_P95_S = 2.0  # referral to gateway, provider alert
TARGET_RATIO = 0.5  # a route's SMS jobs/s at least half its bare jobs'
ROUTES = ("africastalking", "kannel", "orange")  # gateway kinds, as SMS_GATEWAY names them
GATEWAY_LABELS = {"africastalking": "AT emulator", "kannel": "Kannel (real)", "orange": "Orange emulator"}
ORANGE_SENDER = orange_emulator.local_sender()  # our Orange number for the run, the emulator's own
ORANGE_BUNDLE = 10_000_000  # SMS units the emulator's Orange bundle gets, so that no bench run empties it
HOST = "127.0.0.1"
SERVICE_CODE = "*384*7472#"
# tests/journeys.ask_for_help: French, Ask for help, register on the way (Awa, woman, 26-35, Bamako,
# Libya, 3-12 months, I agree), Jobs, Send. Bamako jobs go to APEJ, which has one number.
JOURNEY = ("1", "1", "Awa", "2", "3", "1", "1", "1", "1", "1", "1")
REQUEST_TIMEOUT = 10.0
ORDER = ("sms", "bare", "bare", "sms")  # ABBA cancels a linear drift
HZ = os.sysconf("SC_CLK_TCK")
NOISY_PCT = 20.0  # CPU of processes outside the benchmark, in % of one core


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.sms_delivery", description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=5, help="phase A: referrals per second (default 5)")
    p.add_argument("--duration", type=float, default=20, help="phase A: measured seconds (default 20)")
    p.add_argument("--warmup", type=float, default=2, help="phase A: unmeasured seconds first (default 2)")
    p.add_argument(
        "--settle",
        type=float,
        default=10,
        help="phase A: give up on missing SMS after this many seconds without one (10)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=200,
        help="phase B: jobs per side (sms, bare) and route, over 2 rounds (200)",
    )
    p.add_argument(
        "--routes",
        default=",".join(ROUTES),
        help=f"phase B: the routes to measure, comma-separated (default {','.join(ROUTES)}); "
        "kannel needs Debian's kannel and kannel-extras",
    )
    p.add_argument("--web-workers", type=int, default=2, help="gunicorn workers for the webhook (2)")
    p.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker (4)")
    p.add_argument(
        "--delivery-delay", type=float, default=0.05, help="emulator: seconds to a delivery report"
    )
    add_services(p, redis_db=10, results=RESULTS)
    p.add_argument(
        "--logs", type=Path, default=None, help="copy the processes' logs to this folder at the end"
    )
    args = p.parse_args(argv)
    args.routes = [r.strip().lower() for r in args.routes.split(",") if r.strip()]
    unknown = sorted(set(args.routes) - set(ROUTES))
    if unknown or not args.routes or len(set(args.routes)) < len(args.routes):
        p.error(
            f"--routes: one or more of {', '.join(ROUTES)}, each once (got {', '.join(args.routes) or 'none'})"
        )
    if "kannel" in args.routes and not kannel_installed():
        p.error("--routes kannel: Kannel is not installed (apt-get install kannel kannel-extras)")
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.settle <= 0 or args.jobs < 2:
        p.error("need --rate > 0, --duration > 0, --warmup >= 0, --settle > 0 and --jobs >= 2")
    return args


# -- processes ------------------------------------------------------------------------


class Proc:
    """A subprocess in a session of its own (Ctrl-C reaches only us), stopped however the run ends."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.cmd, self.env, self.log = name, cmd, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self) -> None:
        """Fail with the log's tail if the process died early."""
        if self.proc is not None and self.proc.poll() is not None and self.proc.returncode != 0:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15) -> None:
        """SIGTERM (an RQ worker finishes its job first), then SIGKILL to the group we created."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc.start()
    finally:
        proc.stop()


def wait_until(probe: Any, what: str, timeout: float, procs: tuple[Proc, ...] = ()) -> None:
    """Poll `probe` until truthy; fail naming `what` (and a dead process's log) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        with contextlib.suppress(OSError, requests.RequestException):
            if probe():
                return
        time.sleep(0.05)
    raise RuntimeError(f"no {what} within {timeout:.0f} s" + "".join(f"\n{p.tail()}" for p in procs))


def flask_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "app", *args]


# -- CPU from /proc: who did the work -------------------------------------------------


def machine_cpu() -> float:
    """CPU seconds the whole machine has used (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / HZ


def process_cpu(pid: int, children: bool = True) -> float:
    """CPU seconds of a process, with its reaped children (an RQ worker reaps its work-horses)."""
    try:
        after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(after[11]) + int(after[12]) + (int(after[13]) + int(after[14]) if children else 0)
    return ticks / HZ


def reaped_cpu() -> float:
    """CPU seconds of our own reaped children: a burst worker's whole life once we have waited for it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    return time.process_time()


def background_load(seconds: float = 1.0) -> float:
    """% of one core used while our processes sit idle: other people's work on a shared machine."""
    machine0, me0 = machine_cpu(), own_cpu()
    time.sleep(seconds)
    return max(0.0, machine_cpu() - machine0 - (own_cpu() - me0)) * 100 / seconds


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# RQ's line when it takes a job: "Worker <name>: <queue>: <function>(<args>) (<job id>)"
_DEQUEUED = re.compile(r"Worker \S+: ([\w.-]+): [\w.]+\(.*\) \(([^()\s]+)\)$")


def jobs_taken(log: Path) -> dict[str, list[str]]:
    """The job ids a worker took, per queue, from its log (RQ logs one line per job taken)."""
    taken: dict[str, list[str]] = {}
    for line in _ANSI.sub("", log.read_text(errors="replace")).splitlines():
        match = _DEQUEUED.search(line.rstrip())
        if match:
            taken.setdefault(match.group(1), []).append(match.group(2))
    return taken


# -- phase A: referrals over USSD, one worker -----------------------------------------


@dataclass
class Ref:
    """One returnee's referral as the phone saw it (wall-clock seconds, comparable with the emulator's)."""

    index: int
    phone: str
    warm: bool
    dialled: float = 0.0
    confirm_sent: float | None = None
    end_at: float | None = None
    code: str | None = None
    error: str | None = None


async def make_referral(port: int, ref: Ref) -> None:
    """Dial as a newcomer and walk to the END screen with the growing `text` a gateway sends."""
    http = HttpConnection(HOST, port)
    session_id = f"bench-sms-{ref.index}-{random.getrandbits(32):08x}"
    history: list[str] = []
    ref.dialled = time.time()
    try:
        for step in range(len(JOURNEY) + 1):
            if step:
                history.append(JOURNEY[step - 1])
            last = step == len(JOURNEY)
            form = {"sessionId": session_id, "serviceCode": SERVICE_CODE, "phoneNumber": ref.phone,
                    "networkCode": "61001", "text": "*".join(history)}  # fmt: skip
            if last:
                ref.confirm_sent = time.time()
            status, reply = await asyncio.wait_for(http.post(urlencode(form).encode()), REQUEST_TIMEOUT)
            if status != 200:
                ref.error = f"HTTP {status} after {'*'.join(history)!r}: {reply[:120]!r}"
                return
            if reply.startswith("END ") != last or not reply.startswith(("CON ", "END ")):
                ref.error = f"off journey after {'*'.join(history)!r}: {reply[:120]!r}"
                return
        ref.end_at = time.time()
        ref.code = next(iter(codes_in(reply)), None)
        if ref.code is None:
            ref.error = f"no referral code in {reply[:120]!r}"
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, IndexError) as exc:
        ref.error = f"transport: {type(exc).__name__}: {exc}"
    finally:
        http.close()


async def referrals_at_rate(port: int, rate: float, warmup: float, duration: float) -> list[Ref]:
    """Open loop: referral i starts at i/rate seconds whatever the others do, like people dialling."""
    total, warm = round(rate * (warmup + duration)), round(rate * warmup)
    refs = [Ref(i, bench_phone(9_000_000 + i), i < warm) for i in range(total)]
    start = time.perf_counter() + 0.05
    tasks = []
    for ref in refs:
        await asyncio.sleep(max(0.0, start + ref.index / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(make_referral(port, ref)))
    await asyncio.gather(*tasks)
    return refs


def gateway_messages(emulator_url: str) -> list[dict[str, Any]]:
    return requests.get(emulator_url + "/messages", timeout=10).json()


def match_messages(
    refs: list[Ref], messages: list[dict[str, Any]]
) -> tuple[dict[str, dict[int, float]], int]:
    """When the gateway accepted each referral's provider alert and returnee notice (the first of
    each), and how many messages it accepted twice (the outbox promises exactly once)."""
    by_code = {r.code: r for r in refs if r.code}
    found: dict[str, dict[int, float]] = {"provider": {}, "returnee": {}}
    duplicates = 0
    for m in messages:
        if m.get("direction") != "outbound" or not m.get("id"):
            continue
        ref = next((by_code[c] for c in codes_in(m["text"]) if c in by_code), None)
        if ref is None:
            continue
        kind = "returnee" if m["to"] == ref.phone else "provider"
        at = datetime.fromisoformat(m["at"]).timestamp()
        duplicates += ref.index in found[kind]
        found[kind][ref.index] = min(at, found[kind].get(ref.index, at))
    return found, duplicates


def phase_a(args: argparse.Namespace, app_port: int, emulator_url: str, worker: Proc) -> dict[str, Any]:
    """Referrals at a steady rate through the webhook; then wait until their SMS reached the gateway."""
    cpu0, machine0 = process_cpu(worker.pid), machine_cpu()
    started = time.monotonic()
    refs = asyncio.run(referrals_at_rate(app_port, args.rate, args.warmup, args.duration))
    made = time.monotonic() - started
    done = [r for r in refs if r.code]
    seen, progress = -1, time.monotonic()
    while True:  # a backlog drains slowly: wait while SMS keep arriving, give up once they stop
        found, duplicates = match_messages(refs, gateway_messages(emulator_url))
        count = len(found["provider"]) + len(found["returnee"])
        if count > seen:
            seen, progress = count, time.monotonic()
        complete = all(r.index in found["provider"] and r.index in found["returnee"] for r in done)
        if complete or time.monotonic() - progress > args.settle or not worker.alive():
            break
        time.sleep(0.25)
    window = time.monotonic() - started
    worker_cpu, machine = process_cpu(worker.pid) - cpu0, machine_cpu() - machine0
    measured = [r for r in refs if not r.warm]

    def latencies(kind: str) -> list[float]:
        return sorted(
            found[kind][r.index] - r.end_at for r in measured if r.end_at and r.index in found[kind]
        )

    def figures(values: list[float]) -> dict[str, Any]:
        return {
            "count": len(values),
            "p50_s": percentile(values, 50),
            "p95_s": percentile(values, 95),
            "p99_s": percentile(values, 99),
            "max_s": values[-1] if values else None,
        }

    confirm = sorted((r.end_at - r.confirm_sent) * 1000 for r in measured if r.end_at and r.confirm_sent)
    ussd_errors = [r for r in refs if r.error]
    missing = {k: [r.code for r in done if r.index not in found[k]] for k in ("provider", "returnee")}
    examples = [f"referral {r.index}: {r.error}" for r in ussd_errors[:5]]
    examples += [f"no {k} SMS at the gateway for {c}" for k, codes in missing.items() for c in codes[:3]]
    examples += [f"{duplicates} SMS accepted twice by the gateway"] * bool(duplicates)
    return {
        "referrals": len(refs),
        "measured": len(measured),
        "offered_rate": args.rate,
        "achieved_rate": len([r for r in measured if r.end_at]) / args.duration,
        "seconds_to_make": made,
        "provider_alert": figures(latencies("provider")),
        "returnee_notice": figures(latencies("returnee")),
        "confirm_step_ms": {"p50": percentile(confirm, 50), "p95": percentile(confirm, 95)},
        "worker_cpu_pct": worker_cpu * 100 / window,
        "machine_cpu_pct": machine * 100 / window,
        "ussd_errors": len(ussd_errors),
        "missing_provider_alerts": len(missing["provider"]),
        "missing_returnee_notices": len(missing["returnee"]),
        "duplicate_sms": duplicates,
        "errors": len(ussd_errors) + len(missing["provider"]) + len(missing["returnee"]) + duplicates,
        "error_examples": examples,
    }


# -- phase B: per route, one burst worker, SMS jobs beside bare jobs -----------------


@dataclass
class Burst:
    """One burst worker emptying one kind of queue; CPU is per job over its job loop."""

    route: str
    kind: str
    round: int
    jobs: int
    finished: int = 0
    failed: int = 0
    not_accepted: int = 0  # SMS rows that are not `accepted` afterwards
    span_s: float | None = None  # first job started -> last job ended, from RQ's own timestamps
    jobs_per_s: float = 0.0
    startup_s: float = 0.0  # worker process start -> first job taken (imports, create_app, checks)
    loop_s: float = 0.0  # first job taken -> worker exited
    worker_ms_per_job: float | None = None  # the worker process
    gateway_ms_per_job: float | None = None  # the emulator, or Kannel's boxes and fake SMSC
    rest_ms_per_job: float | None = None  # database, redis, and anything else on the machine
    db_connections_per_job: float | None = None  # PostgreSQL sessions opened, per job
    examples: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return (self.jobs - self.finished) + self.failed + self.not_accepted


class PgSessions:
    """Sessions ever opened on our database (pg_stat_database): new connections per job."""

    def __init__(self, admin_url: str, database_url: str) -> None:
        from sqlalchemy import create_engine

        self.name = database_url.rsplit("/", 1)[1]
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT", pool_size=1)

    def count(self) -> int:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_clear_snapshot()"))
            query = text("SELECT sessions FROM pg_stat_database WHERE datname = :name")
            return int(conn.scalar(query, {"name": self.name}) or 0)

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Gateway:
    """Where one route's SMS go in this run: the settings that point Sira at it, and its processes."""

    route: str  # the gateway kind, as SMS_GATEWAY names it
    env: dict[str, str]
    pids: tuple[int, ...]  # whose CPU is the gateway's share


def run_burst(
    burst: Burst, cmd: list[str], env: dict[str, str], log: Path, queue: Any, job_ids: list[str],
    gateway_pids: tuple[int, ...], pg: PgSessions | None,
) -> None:  # fmt: skip
    """Start one burst worker on a full queue and account for its job loop."""
    from rq.job import Job

    def gateway_cpu() -> float:
        return sum(process_cpu(pid) for pid in gateway_pids)

    sessions0 = pg.count() if pg else 0
    worker = Proc(f"{burst.route} {burst.kind} worker", cmd, env, log)
    t0 = time.monotonic()
    with running(worker):
        while queue.count == burst.jobs and worker.alive() and time.monotonic() - t0 < 60:
            time.sleep(0.005)
        t1 = time.monotonic()
        before = process_cpu(worker.pid)  # start-up, not counted per job
        reaped0, gw0, machine0, me0 = reaped_cpu(), gateway_cpu(), machine_cpu(), own_cpu()
        assert worker.proc is not None
        try:
            worker.proc.wait(timeout=max(60.0, burst.jobs * 0.5))
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{worker.name} did not empty its queue in time:\n{worker.tail()}") from None
        t2 = time.monotonic()
        reaped, gw, machine, me = (reaped_cpu() - reaped0, gateway_cpu() - gw0,
                                   machine_cpu() - machine0, own_cpu() - me0)  # fmt: skip
    worker.check()
    time.sleep(0.2)  # PostgreSQL publishes session counts a moment after a backend ends
    if pg:
        burst.db_connections_per_job = (pg.count() - sessions0) / burst.jobs
    burst.startup_s, burst.loop_s = t1 - t0, t2 - t1
    jobs = [j for j in Job.fetch_many(job_ids, connection=queue.connection) if j is not None]
    if len(jobs) < len(job_ids):
        burst.examples.append(
            f"{len(job_ids) - len(jobs)} jobs vanished from Redis: did someone flush the db?"
        )
    burst.finished = sum(1 for j in jobs if j.get_status() == "finished")
    burst.failed = sum(1 for j in jobs if j.get_status() == "failed")
    unfinished = [j for j in jobs if j.get_status() != "finished"]  # failed, or failed and retried later
    burst.examples += [f"{burst.route} {j.id} {j.get_status()}: {_last_error(j)}" for j in unfinished[:3]]
    starts = [j.started_at for j in jobs if j.started_at]
    ends = [j.ended_at for j in jobs if j.ended_at]
    if starts and ends:
        burst.span_s = (max(ends) - min(starts)).total_seconds()
        burst.jobs_per_s = burst.finished / burst.span_s if burst.span_s > 0 else 0.0
    worker_cpu = reaped - before
    burst.worker_ms_per_job = worker_cpu * 1000 / burst.jobs
    burst.gateway_ms_per_job = gw * 1000 / burst.jobs
    burst.rest_ms_per_job = max(0.0, machine - worker_cpu - gw - me) * 1000 / burst.jobs


def _last_error(job: Any) -> str:
    """The end of the traceback of a job's last failed try (a retried job keeps it in its results)."""
    result = job.latest_result()
    return redact_numbers(((result.exc_string if result is not None else None) or job.exc_info or "")[-200:])


def outbox_rows(database_url: str, env: dict[str, str], count: int) -> tuple[list[int], list[str]]:
    """Provider alerts written to the outbox as `refer` writes them, for the send jobs to pick up;
    and their texts, which the bare jobs send to the same numbers (bench.rq_baseline.bare_phone)."""
    from bench.rq_baseline import bare_phone
    from config import load_settings
    from flows.i18n import Catalogs
    from flows.sms import SmsTexts
    from infra.sealing import Keyring
    from models.db import make_session_factory
    from models.phone import phone_hash
    from models.referral import new_code
    from services.referrals import queue_sms

    settings = load_settings(env)
    texts = SmsTexts.from_settings(settings, Catalogs.load())
    sessions = make_session_factory(database_url, Keyring(settings.encryption_keyring))
    ids, alerts = [], []
    try:
        with sessions() as session:
            for i in range(count):
                to = bare_phone(i)
                alert = texts.provider_alert("fr", new_code(), "employment", "District de Bamako")
                row = queue_sms(
                    session, to, phone_hash(to, settings.phone_hash_key), alert, "provider_alert", None
                )
                ids.append(row.id)
                alerts.append(alert.body)
            session.commit()
    finally:
        sessions.kw["bind"].dispose()
    return ids, alerts


def accepted(database_url: str, ids: list[int]) -> int:
    from sqlalchemy import create_engine, func, select

    from models.messaging import OutboundSms, SmsStatus

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            query = select(func.count()).where(
                OutboundSms.id.in_(ids), OutboundSms.status == SmsStatus.ACCEPTED
            )
            return int(conn.scalar(query) or 0)
    finally:
        engine.dispose()


def phase_b(
    args: argparse.Namespace, env: dict[str, str], database_url: str, redis_url: str, workdir: Path,
    gateway: Gateway,
) -> list[Burst]:  # fmt: skip
    """One route: SMS and bare jobs, each kind in two rounds of M/2, in the order sms, bare, bare, sms.

    The SMS jobs are Sira's (`workers.sms.send_sms` by `flask --app app worker --burst`, through
    the route's gateway adapter); the bare ones make the same HTTP call with the same client.
    """
    from redis import Redis
    from rq import Queue

    from config import load_settings
    from infra import queues
    from infra.queues import Outbox, sms_job_id, sms_retry

    env = {**env, **gateway.env, "SMS_GATEWAY": gateway.route}
    per_round = args.jobs // 2
    settings = load_settings(env)
    ids, alerts = outbox_rows(database_url, env, per_round * 2)
    pg = PgSessions(args.pg_admin_url, database_url) if args.database == "postgresql" else None
    redis = Redis.from_url(redis_url)
    sms_q, bare_q = Queue(queues.SMS, connection=redis), Queue(BARE_QUEUE, connection=redis)
    bursts: list[Burst] = []
    try:
        for i, kind in enumerate(ORDER):
            rnd = ORDER[: i + 1].count(kind)
            burst = Burst(gateway.route, kind, rnd, per_round)
            mine = range((rnd - 1) * per_round, rnd * per_round)  # the same numbers and texts each side
            print(
                f"  phase B {gateway.route} {kind} round {rnd}: {per_round} jobs", file=sys.stderr, flush=True
            )
            if kind == "sms":
                sms_ids = [ids[n] for n in mine]
                Outbox.from_settings(redis, settings).queue(sms_ids)
                job_ids = [sms_job_id(x) for x in sms_ids]
                run_burst(burst, flask_cmd("worker", "--burst"), env, workdir / f"burst-{gateway.route}.log",
                          sms_q, job_ids, gateway.pids, pg)  # fmt: skip
                burst.not_accepted = per_round - accepted(database_url, sms_ids)
            else:
                job_ids = [f"bare-{gateway.route}-{rnd}-{n}" for n in mine]
                bare_q.enqueue_many(
                    [
                        Queue.prepare_data(
                            "bench.rq_baseline.bare_send", args=(n, alerts[n]), job_id=job_id,
                            retry=sms_retry(settings.sms_retry_intervals), timeout=settings.sms_job_timeout_seconds,
                            result_ttl=3600, failure_ttl=7 * 86400,
                        )
                        for n, job_id in zip(mine, job_ids, strict=True)
                    ]
                )  # fmt: skip
                cmd = [sys.executable, "-m", "bench.rq_baseline", "--queue", BARE_QUEUE]
                run_burst(burst, cmd, env, workdir / f"bare-{gateway.route}.log", bare_q, job_ids,
                          gateway.pids, pg)  # fmt: skip
            print(
                f"  phase B {gateway.route} {kind} round {rnd}: {burst.jobs_per_s:.0f} jobs/s, "
                f"errors {burst.errors}",
                file=sys.stderr,
                flush=True,
            )
            bursts.append(burst)
    finally:
        redis.close()
        if pg:
            pg.close()
    return bursts


def summarise_b(bursts: list[Burst]) -> dict[str, Any]:
    """Per kind: jobs/s over both rounds (total jobs / total span), CPU per job; and sms/bare."""
    out: dict[str, Any] = {}
    for kind in ("sms", "bare"):
        mine = [b for b in bursts if b.kind == kind]
        span = sum(b.span_s or 0.0 for b in mine)

        def mean(attr: str, mine: list[Burst] = mine) -> float | None:
            values = [getattr(b, attr) for b in mine if getattr(b, attr) is not None]
            return sum(values) / len(values) if values else None

        out[kind] = {
            "jobs": sum(b.jobs for b in mine),
            "jobs_per_s": sum(b.finished for b in mine) / span if span else 0.0,
            "rounds_jobs_per_s": [b.jobs_per_s for b in mine],
            "worker_ms_per_job": mean("worker_ms_per_job"),
            "gateway_ms_per_job": mean("gateway_ms_per_job"),
            "rest_ms_per_job": mean("rest_ms_per_job"),
            "db_connections_per_job": mean("db_connections_per_job"),
            "startup_s": mean("startup_s"),
            "errors": sum(b.errors for b in mine),
            "error_examples": [e for b in mine for e in b.examples][:5],
            "rounds": [asdict(b) for b in mine],
        }
    sms, bare = out["sms"]["jobs_per_s"], out["bare"]["jobs_per_s"]
    out["ratio"] = sms / bare if bare else None
    return out


def b_errors(b: dict[str, Any]) -> int:
    return sum(r["sms"]["errors"] + r["bare"]["errors"] for r in b["routes"].values())


# -- report ---------------------------------------------------------------------------


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(a: dict[str, Any], b: dict[str, Any], args: argparse.Namespace) -> str:
    """A compact table and the one summary line."""
    alert, notice = a["provider_alert"], a["returnee_notice"]
    p95 = alert["p95_s"]
    ok = "ok" if p95 is not None and p95 < TARGET_P95_S else "MISSED"
    routes: dict[str, dict[str, Any]] = b["routes"]
    errors = a["errors"] + b_errors(b)
    rows = [
        f"sms_delivery: {args.database}; phase A {args.rate:g} referrals/s for {args.duration:g} s "
        f"(+{args.warmup:g} s warm-up) over USSD, 1 worker; phase B per route ({', '.join(routes)}): "
        f"{args.jobs // 2} jobs x 2 rounds per side (sms, bare, bare, sms), 1 burst SimpleWorker each",
        f"{'phase A: END reply -> gateway':<36}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'n':>6}",
    ]
    for label, f, note in (
        ("  provider alert, s", alert, f"   target p95 < {TARGET_P95_S:g}: {ok}"),
        ("  returnee notice, s", notice, ""),
    ):
        rows.append(
            f"{label:<36}{_fmt(f['p50_s']):>8}{_fmt(f['p95_s']):>8}{_fmt(f['p99_s']):>8}"
            f"{_fmt(f['max_s']):>8}{f['count']:>6}{note}"
        )
    rows.append(
        f"  confirm step ms p50/p95 {_fmt(a['confirm_step_ms']['p50'], 0)}/{_fmt(a['confirm_step_ms']['p95'], 0)}"
        f"; achieved {a['achieved_rate']:.1f} referrals/s; worker {a['worker_cpu_pct']:.0f}% of a core, "
        f"machine {a['machine_cpu_pct']:.0f}%"
    )
    jobs = a.get("worker_jobs", {})
    rows.append(
        f"  worker took {jobs.get('sms', '-')} sms jobs ({jobs.get('sms_duplicates', '-')} duplicates) "
        f"and {jobs.get('default', '-')} cron jobs for {a['referrals']} referrals"
    )
    rows.append(
        f"phase B: jobs/s per route {'sms':>9}{'bare':>9}{'sms/bare':>10}  target >= {TARGET_RATIO:g}"
        f"{'rounds sms':>14}{'rounds bare':>14}"
    )
    for name, r in routes.items():
        verdict = "ok" if r["ratio"] is not None and r["ratio"] >= TARGET_RATIO else "MISSED"
        rounds = {k: "/".join(f"{x:.0f}" for x in r[k]["rounds_jobs_per_s"]) for k in ("sms", "bare")}
        rows.append(
            f"  {GATEWAY_LABELS.get(name, name):<23}{r['sms']['jobs_per_s']:>9.1f}{r['bare']['jobs_per_s']:>9.1f}"
            f"{_fmt(r['ratio']):>10}  {verdict:<13}{rounds['sms']:>14}{rounds['bare']:>14}"
        )
    rows.append(
        f"  CPU ms/job, sms | bare: {'worker':>15}{'gateway':>15}{'rest of machine':>18}{'db conn/job':>13}"
        f"{'start-up s':>13}"
    )

    def pair(r: dict[str, Any], key: str, digits: int = 1) -> str:
        return f"{_fmt(r['sms'][key], digits)} | {_fmt(r['bare'][key], digits)}"

    for name, r in routes.items():
        rows.append(
            f"  {GATEWAY_LABELS.get(name, name):<23}{pair(r, 'worker_ms_per_job'):>16}"
            f"{pair(r, 'gateway_ms_per_job'):>15}{pair(r, 'rest_ms_per_job'):>18}"
            f"{_fmt(r['sms']['db_connections_per_job'], 2):>13}{pair(r, 'startup_s'):>13}"
        )
    per_referral = 2  # a provider alert (one number) and the returnee's notice
    name = "africastalking" if "africastalking" in routes else next(iter(routes))
    rows.append(
        f"  one worker keeps up with ~{routes[name]['sms']['jobs_per_s'] / per_referral:.1f} referrals/s "
        f"({per_referral} SMS each, {name}); "
        f"phase A offered {args.rate:g}/s"
    )
    if b["background_pct"] > NOISY_PCT:
        rows.append(
            f"note: other processes used {b['background_pct']:.0f}% of a core while ours were idle; "
            "rerun on a quiet machine before trusting small differences"
        )
    rows.append(
        f"errors: ussd {a['ussd_errors']}, missing alerts {a['missing_provider_alerts']}, missing notices "
        f"{a['missing_returnee_notices']}, sent twice {a['duplicate_sms']}, "
        + ", ".join(
            f"{n} sms jobs {r['sms']['errors']}, {n} bare jobs {r['bare']['errors']}"
            for n, r in routes.items()
        )
    )
    rows += [f"  ! {e}" for e in a["error_examples"]]
    rows += [
        f"  ! {e}" for r in routes.values() for e in r["sms"]["error_examples"] + r["bare"]["error_examples"]
    ]
    ratios = ", ".join(
        f"{n} {r['sms']['jobs_per_s']:.0f}/{r['bare']['jobs_per_s']:.0f} jobs/s ratio {_fmt(r['ratio'])}"
        for n, r in routes.items()
    )
    rows.append(
        f"sms_delivery: referral→gateway p50 {_fmt(alert['p50_s'])} s p95 {_fmt(p95)} s (n={alert['count']}); "
        f"sms/bare {ratios}; errors {errors}"
    )
    return "\n".join(rows)


def write_json(path: Path, a: dict[str, Any], b: dict[str, Any], args: argparse.Namespace) -> None:
    doc = {
        **run_header("sms_delivery", args),
        "targets": {"provider_alert_p95_max_s": TARGET_P95_S, "sms_bare_ratio_min": TARGET_RATIO},
        "referral_to_gateway_p50_s": a["provider_alert"]["p50_s"],
        "referral_to_gateway_p95_s": a["provider_alert"]["p95_s"],
        "routes": {
            name: {
                "sms_jobs_per_s": r["sms"]["jobs_per_s"],
                "bare_jobs_per_s": r["bare"]["jobs_per_s"],
                "ratio": r["ratio"],
            }
            for name, r in b["routes"].items()
        },
        "errors": a["errors"] + b_errors(b),
        "latency": a,
        "throughput": b,
    }
    save_json(path, doc)


# -- the run --------------------------------------------------------------------------


def empty_queues(redis_url: str) -> int:
    """Drop what phase A's worker left queued (cron jobs), so phase B's worker runs only our jobs."""
    from redis import Redis
    from rq import Queue

    from infra import queues

    with Redis.from_url(redis_url) as redis:
        return sum(Queue(name, connection=redis).empty() for name in (*queues.ALL, BARE_QUEUE))


def worker_ready(redis_url: str) -> bool:
    from redis import Redis
    from rq import Worker

    with Redis.from_url(redis_url) as redis:
        return any(w.get_state() == "idle" for w in Worker.all(connection=redis))


def copy_logs(workdir: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, to / log.name)


def redis_db_unused(db: int) -> None:
    """Refuse a Redis db that another client is using: flushing it would break their run, and their
    flushes would silently drop our queued jobs (a test suite flushes its db before every test)."""
    from redis import Redis

    with Redis.from_url(f"{REDIS_BASE}/{db}") as redis:
        me = redis.client_id()
        others = [c for c in redis.client_list() if int(c.get("db", -1)) == db and int(c["id"]) != me]
    if others:
        raise RuntimeError(
            f"Redis db {db} is in use by {len(others)} other client(s) ({others[0].get('addr')}); "
            "choose a free one with --redis-db"
        )


def kannel_installed() -> bool:
    """Debian's bearerbox, smsbox and kannel-extras' fakesmsc, as the Kannel tests use them."""
    from tests.kannel_helpers import FAKESMSC, box

    return all(os.access(path, os.X_OK) for path in (box("bearerbox"), box("smsbox"), FAKESMSC))


def start_gateways(
    routes: list[str],
    stack: contextlib.ExitStack,
    workdir: Path,
    emulator_url: str,
    emulator: Proc,
    app_port: int,
) -> dict[str, Gateway]:
    """Each route's endpoint for phase B: the emulator's AT or Orange face, or a real Kannel (bearerbox
    and smsbox from Debian, kannel-extras' fake SMSC as the network), started here, stopped at the end."""
    gateways = {}
    for route in routes:
        if route == "africastalking":
            gateways[route] = Gateway(route, {"AT_API_URL": emulator_url}, (emulator.pid,))
        elif route == "orange":
            faults = requests.post(
                emulator_url + "/faults", json={"orange_balance": ORANGE_BUNDLE}, timeout=10
            )
            faults.raise_for_status()
            env = {"ORANGE_API_URL": emulator_url, "ORANGE_SENDER_ADDRESS": ORANGE_SENDER}
            gateways[route] = Gateway(route, env, (emulator.pid,))
        else:
            from gateway.kannel import INCOMING_PATH
            from tests.kannel_helpers import PASSWORD, USERNAME, start_kannel

            directory = workdir / "kannel"
            directory.mkdir()
            kannel = start_kannel(directory, f"http://{HOST}:{app_port}{INCOMING_PATH}")
            stack.callback(kannel.stop)
            env = {
                "KANNEL_SENDSMS_URL": kannel.sendsms_url,
                "KANNEL_USERNAME": USERNAME,
                "KANNEL_PASSWORD": PASSWORD,
            }
            gateways[route] = Gateway(route, env, tuple(p.pid for p in kannel.processes.values()))
    return gateways


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the context managers: processes stopped, database dropped


def main(argv: list[str] | None = None) -> int:
    from infra import queues

    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    redis_db_unused(args.redis_db)
    with contextlib.ExitStack() as stack:
        workdir, database_url, redis_url = throwaway(
            stack, args.database, args.pg_admin_url, args.redis_db, prefix="sira_bench_sms_"
        )
        if args.logs:
            stack.callback(copy_logs, workdir, args.logs)  # runs once the processes have stopped
        emulator_port = free_port()
        env = server_env(database_url, redis_url, args.web_workers, args.web_threads,
                         AT_API_URL=f"http://{HOST}:{emulator_port}")  # fmt: skip
        app = Server("app", "app:create_app()", env, workdir / "app.log")
        env["PUBLIC_BASE_URL"] = app.env["PUBLIC_BASE_URL"] = f"http://{HOST}:{app.port}"
        emulator = stack.enter_context(
            running(
                Proc(
                    "emulator",
                    [sys.executable, "-m", "gateway.emulator", "--port", str(emulator_port),
                     "--callback-base", f"http://{HOST}:{app.port}", "--delivery-delay", str(args.delivery_delay)],
                    env,
                    workdir / "emulator.log",
                )
            )
        )  # fmt: skip
        seeded = subprocess.run(
            flask_cmd("seed"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"seed failed:\n{seeded.stdout}{seeded.stderr}")
        wait_until(lambda: requests.get(env["AT_API_URL"] + "/", timeout=1).ok, "emulator", 20, (emulator,))
        gateways = start_gateways(args.routes, stack, workdir, env["AT_API_URL"], emulator, app.port)

        with served([app]):
            app.wait_ready("/healthz", 200)
            with running(Proc("worker", flask_cmd("worker"), env, workdir / "worker.log")) as worker:
                wait_until(lambda: worker_ready(redis_url), "idle RQ worker", 40, (worker,))
                background = [background_load()]
                print(
                    f"sms_delivery: app on :{app.port}, emulator on :{emulator_port}; phase A, "
                    f"{args.rate:g} referrals/s",
                    file=sys.stderr,
                    flush=True,
                )
                a = phase_a(args, app.port, env["AT_API_URL"], worker)
                worker.check()
            taken = jobs_taken(worker.log)
            sms_taken = taken.get(queues.SMS, [])
            a["worker_jobs"] = {
                "sms": len(sms_taken),
                "sms_duplicates": len(sms_taken) - len(set(sms_taken)),  # the same send job taken again
                "default": len(taken.get(queues.DEFAULT, [])),  # the cron's sweeps, transcript flushes
            }
        # Delivery reports of phase B now find no webhook: phase B weighs the worker alone.
        a["left_in_queues"] = empty_queues(redis_url)
        background.append(background_load())
        routes = {}
        for name, gateway in gateways.items():
            routes[name] = summarise_b(phase_b(args, env, database_url, redis_url, workdir, gateway))
            background.append(background_load())
        b = {"routes": routes, "background_pct": max(background)}
    print(report(a, b, args))
    write_json(args.output, a, b, args)
    print(f"results: {args.output}", file=sys.stderr)
    return 1 if a["errors"] + b_errors(b) else 0


if __name__ == "__main__":
    run(main, "sms_delivery")
