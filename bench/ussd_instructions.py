"""Instructions per USSD step, counted by valgrind's callgrind: a figure the machine's noise leaves alone.

`python -m bench.ussd_instructions` runs the bench's registration journeys through the real webhook
in one process (Flask's WSGI app called directly, as gunicorn calls it; a throw-away PostgreSQL
database and Redis db, as `bench.ussd_steps` prepares them) under callgrind, and counts only the
measured steps: each phone first dials twice (its profile cached, as on a busy server) with
callgrind's instrumentation off, then it is switched on, `--rounds` more sessions a phone run,
and the counters are dumped. With
`--baseline REV`, the same for the app at git revision REV, checked out beside this one.

Seconds on a shared 2-core machine swing by ±15 % from one run to the next; instruction counts
repeat to 0.1 %, so a change of a few per cent shows. They count the app's own work only: not
the kernel's (system calls, the network), nor gunicorn's, nor the wait for Redis and PostgreSQL,
which `bench.ussd_steps` measures. `--timer cpu` runs without valgrind and reports CPU seconds
(quick, noisy; used by the smoke test).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.ussd_instructions", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--phones", type=int, default=50, help="phones, each with sessions of its own (50)")
    p.add_argument("--rounds", type=int, default=2, help="measured sessions a phone (2: ~1000 steps)")
    p.add_argument(
        "--redis-db", type=int, default=12, help="dedicated Redis db, flushed before and after (12)"
    )
    p.add_argument("--baseline", metavar="REV", help="count the app at git revision REV too")
    p.add_argument("--timer", choices=("callgrind", "cpu"), default="callgrind")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # the measured process's marker folder
    args = p.parse_args(argv)
    if args.phones < 1 or args.rounds < 1:
        p.error("--phones and --rounds must be at least 1")
    if args.timer == "callgrind" and not args.child and not shutil.which("valgrind"):
        p.error("valgrind is not installed (Debian: apt-get install valgrind); or use --timer cpu")
    return args


# -- the measured process (runs in the checkout being measured) ---------------------------------


# What gunicorn hands the app for a USSD callback, but the body: built once, copied per step, so
# that the driver's own share of the count stays small (the same on both sides of a comparison).
_ENVIRON = {"REQUEST_METHOD": "POST", "PATH_INFO": "/ussd", "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/x-www-form-urlencoded", "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True,
            "wsgi.run_once": False, "wsgi.version": (1, 0)}  # fmt: skip


def _post(app: Any, body: bytes) -> str:
    statuses: list[str] = []
    environ = {**_ENVIRON, "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    chunks = app(environ, lambda status, _headers, _exc=None: statuses.append(status))
    reply = b"".join(chunks).decode()
    getattr(chunks, "close", lambda: None)()
    if statuses != ["200 OK"] or not reply.startswith(("CON ", "END ")):
        raise RuntimeError(f"the webhook answered {statuses} {reply[:80]!r}")
    return reply


def child(args: argparse.Namespace) -> None:
    """Warm up, tell the parent, run the measured sessions, tell it the steps, wait to be let go."""
    sys.path.insert(0, os.getcwd())  # the checkout being measured, this one or the baseline's
    from bench.ussd_load import NETWORK_CODE, REGISTER, SERVICE_CODE, answers, bench_phone, register_choice
    from bench.ussd_profile import sira_app

    try:
        app_context = sira_app("postgresql", redis_db=args.redis_db)
    except TypeError:  # an older revision's: Redis db 12 always
        app_context = sira_app("postgresql")
    marks: Path = args.child

    with app_context as app:

        def session(n: int, k: int) -> int:
            """One registration; the form's fixed fields are encoded once, only `text` per step."""
            fixed = urlencode({"sessionId": f"instr-{n}-{k}", "serviceCode": SERVICE_CODE,
                               "phoneNumber": bench_phone(3_000_000 + n), "networkCode": NETWORK_CODE})  # fmt: skip
            history: list[str] = []
            reply = _post(app, f"{fixed}&text=".encode())
            for answer in answers(register_choice(reply) is not None):
                history.append(register_choice(reply) or "?" if answer == REGISTER else answer)
                reply = _post(app, f"{fixed}&text={quote('*'.join(history))}".encode())
            return len(history) + 1

        for k in range(2):
            for n in range(args.phones):
                session(n, k)
        (marks / "ready").touch()
        _wait(marks / "go")
        started, steps = time.process_time(), 0
        for k in range(2, 2 + args.rounds):
            for n in range(args.phones):
                steps += session(n, k)
        written = marks / "done.part"  # renamed whole: the parent never reads a half-written file
        written.write_text(f"{steps} {time.process_time() - started}")
        written.replace(marks / "done")
        _wait(marks / "exit")


def _wait(mark: Path, process: subprocess.Popen | None = None) -> None:
    """Until the other process leaves `mark`; the parent also stops waiting if the child died."""
    while not mark.exists():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the measured process stopped: {(mark.parent / 'log').read_text()[-2000:]}")
        time.sleep(0.05)


# -- the parent ---------------------------------------------------------------------------------


def measure(checkout: Path, args: argparse.Namespace, workdir: Path) -> tuple[int, float]:
    """(steps, instructions or CPU ms per step) of the app in `checkout`."""
    marks = Path(tempfile.mkdtemp(dir=workdir))
    command = [sys.executable, str(HERE), "--child", str(marks), "--phones", str(args.phones),
               "--rounds", str(args.rounds), "--redis-db", str(args.redis_db)]  # fmt: skip
    if args.timer == "callgrind":
        # Not instrumented until the measured steps: start-up and warm-up run ~10 times faster.
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={marks}/callgrind.%p", *command]  # fmt: skip
    log = (marks / "log").open("w")
    process = subprocess.Popen(command, cwd=checkout, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(marks / "ready", process)
        if args.timer == "callgrind":
            _control("--instr=on", process.pid)
        (marks / "go").touch()
        _wait(marks / "done", process)
        steps, cpu_seconds = (marks / "done").read_text().split()
        if args.timer == "callgrind":
            _control("-d", process.pid)
            per_step = _instructions(marks) / int(steps)
        else:
            per_step = float(cpu_seconds) * 1000 / int(steps)
        (marks / "exit").touch()
        if process.wait(timeout=600) != 0:
            raise RuntimeError(f"the measured process failed: {(marks / 'log').read_text()[-2000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        log.close()
    return int(steps), per_step


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True, timeout=120)


def _instructions(marks: Path) -> int:
    """The instructions of the dump taken at the end of the measured steps (counted from their start)."""
    for _ in range(100):
        for dump in sorted(marks.glob("callgrind.*")):
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        time.sleep(0.1)
    raise RuntimeError("callgrind wrote no dump")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        child(args)
        return
    from bench.ussd_steps import worktree

    unit = "instructions" if args.timer == "callgrind" else "CPU ms"
    with tempfile.TemporaryDirectory(prefix="sira_instr_") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        targets = {"this checkout": ROOT}
        if args.baseline:
            targets[args.baseline] = stack.enter_context(worktree(args.baseline, workdir / "baseline"))
        figures = {}
        for name, checkout in targets.items():
            steps, figures[name] = measure(checkout, args, workdir)
            print(f"ussd_instructions: {name}: {steps} steps, {figures[name]:,.3f} {unit} a step", flush=True)
        if args.baseline:
            print(f"ussd_instructions: this checkout / {args.baseline}: "
                  f"{figures['this checkout'] / figures[args.baseline]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
