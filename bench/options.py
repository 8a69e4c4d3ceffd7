"""The benches' shared command line: where a run's throw-away services live, how its servers and
its simulated phones run, and how a run ends; each bench declares only what is its own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_BASE = "redis://127.0.0.1:6379"


def add_services(p: argparse.ArgumentParser, redis_db: int, results: Path) -> None:
    """--database, --redis-db, --pg-admin-url, --output. Each bench has its own Redis db, so two
    of them can run at once."""
    p.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument(
        "--redis-db",
        type=int,
        default=redis_db,
        help=f"dedicated Redis db, flushed before and after ({redis_db})",
    )
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where to create the throw-away database")
    p.add_argument("--output", type=Path, default=results, help=f"JSON results (default {results})")


def add_servers(p: argparse.ArgumentParser, which: str) -> None:
    """--workers and --threads of the gunicorn servers (`which`: "both servers", "each pool")."""
    p.add_argument("--workers", type=int, default=2, help=f"gunicorn workers of {which} (2)")
    p.add_argument("--threads", type=int, default=4, help=f"threads per worker of {which} (4)")


def add_phones(p: argparse.ArgumentParser, phones: int, duration: float, per: str) -> None:
    """--concurrency, --duration, --warmup, --think, --jitter: the simulated phones' load."""
    p.add_argument("--concurrency", type=int, default=phones, help=f"simulated phones ({phones})")
    p.add_argument(
        "--duration", type=float, default=duration, help=f"measured seconds per {per} ({duration:g})"
    )
    p.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each segment (3)")
    p.add_argument("--think", type=float, default=0.5, help="seconds between a phone's steps (0.5)")
    p.add_argument("--jitter", type=float, default=0.5, help="think time varies by ± this fraction (0.5)")


def check_phones(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse, with the reason, a load that cannot run."""
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0 or not 0 <= args.jitter <= 1:
        p.error("need --concurrency >= 1, --duration > 0, --warmup >= 0 and 0 <= --jitter <= 1")


def run(main: Callable[[], int], name: str) -> NoReturn:
    """Run a bench's `main` as its command, with its exit code. Ctrl-C exits 130, and a failed
    server, worker or driver (a RuntimeError) 2, each said in one line: by then the run's context
    managers have stopped every process and dropped its database."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(f"{name}: interrupted; processes stopped and the database dropped", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        sys.exit(2)
