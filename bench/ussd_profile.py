"""Where a USSD step's time goes, in one process: round trips per step, then a CPU profile.

`python -m bench.ussd_profile` serves nothing: it calls the real webhook through Flask's test
client on a fresh database and Redis db (as `bench.ussd_steps` prepares them), so what it shows
is the app's own cost without gunicorn or the network. First it walks one registration journey
and prints, for each step, the SQL statements, pool check-outs (each one pings the server), Redis
round trips and the milliseconds spent in each; then it runs `--journeys` journeys under
cProfile and prints the functions with the most own and cumulative time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import io
import pstats
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.options import PG_ADMIN_URL
from bench.ussd_load import (
    NETWORK_CODE,
    NUMBERS,
    PROBE_PHONE,
    REGISTER,
    SERVICE_CODE,
    answers,
    bench_phone,
    register_choice,
)
from bench.ussd_steps import throwaway
from web.context import sira

FICTITIOUS_PHONE, WARM_PHONE = PROBE_PHONE, bench_phone(NUMBERS - 10)


@dataclass
class Counts:
    """Round trips and time of one step; reset before each request."""

    sql: list[str] = field(default_factory=list)
    sql_ms: float = 0.0
    checkouts: int = 0
    pings: int = 0
    ping_ms: float = 0.0
    commit_ms: float = 0.0
    redis_trips: int = 0
    redis_ms: float = 0.0

    def reset(self) -> None:
        self.__dict__.update(Counts().__dict__)


COUNTS = Counts()


def _timed(add: Callable[[float], None], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            add((time.perf_counter() - started) * 1000)

    return wrapper


def instrument(app: Any) -> None:
    """Count and time SQL, pool check-outs and pings, commits and Redis round trips."""
    from redis import Redis
    from redis.client import Pipeline
    from redis.connection import AbstractConnection
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    engine = sira(app).sessions.kw["bind"]
    started: dict[int, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn, cursor, statement, _params, _context, _many) -> None:
        started[id(cursor)] = time.perf_counter()
        COUNTS.sql.append(" ".join(statement.split()[:4]))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(_conn, cursor, _statement, _params, _context, _many) -> None:
        COUNTS.sql_ms += (time.perf_counter() - started.pop(id(cursor), time.perf_counter())) * 1000

    @event.listens_for(engine, "checkout")
    def _checkout(*_args: object) -> None:
        COUNTS.checkouts += 1

    def add_ping(ms: float) -> None:
        COUNTS.pings += 1
        COUNTS.ping_ms += ms

    def add_commit(ms: float) -> None:
        COUNTS.commit_ms += ms

    def add_redis(ms: float) -> None:
        COUNTS.redis_ms += ms

    engine.dialect.do_ping = _timed(add_ping, engine.dialect.do_ping)
    Session.commit = _timed(add_commit, Session.commit)  # type: ignore[method-assign]
    Redis.execute_command = _timed(add_redis, Redis.execute_command)  # type: ignore[method-assign]
    Pipeline.execute = _timed(add_redis, Pipeline.execute)  # type: ignore[method-assign]
    send = AbstractConnection.send_packed_command

    def counted_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        COUNTS.redis_trips += 1
        return send(self, *args, **kwargs)

    AbstractConnection.send_packed_command = counted_send  # type: ignore[method-assign]


@contextlib.contextmanager
def sira_app(database: str, redis_db: int = 12) -> Iterator[Any]:
    """The real app on a throw-away database and a Redis db of its own (flushed)."""
    from app import create_app

    with contextlib.ExitStack() as stack:
        _, database_url, redis_url = throwaway(
            stack, database, PG_ADMIN_URL, redis_db, prefix="sira_profile_"
        )
        app = create_app(
            {
                "database_url": database_url,
                "redis_url": redis_url,
                "phone_hash_key": secrets.token_hex(32),
                "ussd_rate_limit": 1000000,
            }
        )
        yield app
        sira(app).sessions.kw["bind"].dispose()


def journey(client: Any, number: str, session_id: str, on_step: Callable[[str, str], None]) -> None:
    """One registration, as the load driver walks it."""
    history: list[str] = []

    def post() -> str:
        form = {"sessionId": session_id, "serviceCode": SERVICE_CODE, "phoneNumber": number,
                "networkCode": NETWORK_CODE, "text": "*".join(history)}  # fmt: skip
        reply = client.post("/ussd", data=form).get_data(as_text=True)
        on_step("*".join(history), reply)
        return reply

    reply = post()
    for answer in answers(register_choice(reply) is not None):  # "Modifier mon inscription" once registered
        history.append(register_choice(reply) or "?" if answer == REGISTER else answer)
        reply = post()


def round_trips(client: Any) -> None:
    """Print the round trips of each step of a first and a second registration."""
    print(f"{'text':<24}{'ms':>7}{'cpu ms':>8}{'sql':>5}{'sql ms':>8}{'ckout':>6}{'ping ms':>8}"
          f"{'commit':>8}{'redis':>6}{'r ms':>6}  statements")  # fmt: skip
    for dial in (1, 2):
        print(f"-- dial {dial}")
        marks = {"t": time.perf_counter(), "c": time.process_time()}

        def on_step(text: str, _reply: str, marks: dict[str, float] = marks) -> None:
            c = COUNTS
            print(
                f"{text or '(dial)':<24}{(time.perf_counter() - marks['t']) * 1000:>7.1f}"
                f"{(time.process_time() - marks['c']) * 1000:>8.1f}{len(c.sql):>5}{c.sql_ms:>8.1f}"
                f"{c.checkouts:>6}{c.ping_ms:>8.1f}{c.commit_ms:>8.1f}{c.redis_trips:>6}{c.redis_ms:>6.1f}"
                f"  {'; '.join(c.sql)}"
            )
            COUNTS.reset()
            marks["t"], marks["c"] = time.perf_counter(), time.process_time()

        COUNTS.reset()
        journey(client, FICTITIOUS_PHONE, f"profile-{dial}-{secrets.token_hex(4)}", on_step)


def profile(client: Any, journeys: int, top: int) -> None:
    """cProfile `journeys` registrations (half of them second dials) and print the hot spots."""
    steps = 0

    def count(_text: str, _reply: str) -> None:
        nonlocal steps
        steps += 1

    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    for i in range(journeys):
        journey(client, bench_phone(1_000_000 + i // 2), f"profile-{i}-{secrets.token_hex(4)}", count)
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"\n{steps} steps: {wall / steps * 1000:.2f} ms wall, {cpu / steps * 1000:.2f} ms CPU per step "
          "(under cProfile, which inflates CPU)")  # fmt: skip
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(f"\n== by {order} ==")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20_000])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.ussd_profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--journeys", type=int, default=200, help="registrations to profile (default 200)")
    p.add_argument("--top", type=int, default=30, help="functions to list (default 30)")
    p.add_argument(
        "--redis-db", type=int, default=12, help="dedicated Redis db, flushed before and after (12)"
    )
    args = p.parse_args(argv)
    with sira_app(args.database, args.redis_db) as app:
        instrument(app)
        client = app.test_client()
        journey(client, WARM_PHONE, "profile-warm", lambda *_: None)  # load caches, open connections
        round_trips(client)
        profile(client, args.journeys, args.top)


if __name__ == "__main__":
    main()
