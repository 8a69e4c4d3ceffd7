"""USSD transcripts: every step, as the returnee saw it, for the coordinators.

A step that changes nothing in the database (navigation, a question answered) is not worth a
database round trip on the request path, which must stay fast: it is sealed and appended to a
Redis list in the same call that saves the session, and a worker job moves the list into the
database in batches. So is a step with effects, once its effects are committed (with the
session's row); a step whose state could not be saved (Redis down, a lost race) is written
directly. Inserts are idempotent on the session id and on (session, step number).

Erasure leaves a tombstone holding its time: a session that had begun by then belongs to the
erased person, wherever its steps still are; one begun later is a new life of the number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime

from redis import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from models.base import as_utc
from models.db import insert_ignore
from models.ussd import UssdSession, UssdStep

STEP_BUFFER = "ussd:steps"
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # built once, not per step
SEALING_PURPOSE = "ussd-steps"
ERASED_TTL_SECONDS = 2 * 24 * 3600  # far longer than a step waits in the buffer, dead list aside


# For some phone hashes, when each was erased (those never erased are left out).
Erasures = Callable[[Collection[str]], Mapping[str, float]]


def erased_key(phone_digest: str) -> str:
    """A tombstone: this phone was erased, so its buffered steps must not bring a session back."""
    return f"ussd:erased:{phone_digest}"


def erasure_mark() -> str:
    """What a tombstone holds: the erasure's time (epoch seconds), which sessions are compared to."""
    return repr(time.time())


def erased_at(mark: bytes | str | None) -> float | None:
    """The erasure time a tombstone holds; None if there is none (or it is unreadable)."""
    try:
        return float(mark) if mark else None
    except ValueError:
        return None


def erasure_times(redis: Redis, digests: Collection[str]) -> dict[str, float]:
    """When each of these phones was erased, for those that were (one MGET)."""
    digests = list(digests)
    marks = redis.mget([erased_key(d) for d in digests]) if digests else []
    times = {d: erased_at(mark) for d, mark in zip(digests, marks, strict=True)}
    return {d: t for d, t in times.items() if t is not None}


def begun_before_erasure(started: float, erased: float | None) -> bool:
    """Whether a session that began at `started` (epoch seconds) is the erased person's."""
    return erased is not None and started <= erased


def step_record(
    session_id: str,
    seq: int,
    user_input: str,
    screen: str,
    server_ms: float,
    at: str,
    outcome: str | None,
    session_row: dict | None = None,
    language: str | None = None,
) -> bytes:
    """One step as JSON (sealed by the caller); a first step also carries its session's row, a
    last one the session's outcome and language."""
    record = {"s": session_id, "n": seq, "i": user_input[:200], "r": screen, "ms": server_ms, "at": at,
              "o": outcome, "m": session_row, "l": language}  # fmt: skip
    return _ENCODE(record).encode()


def write_steps(session: Session, records: list[dict], erasures: Erasures) -> int:
    """Insert buffered steps, creating the session rows that first steps carry.

    `erasures` gives, for phone hashes, the time each was erased (those not erased are absent).
    No step of a session begun before its phone was erased is written, and such a session's row
    is deleted if something (an end-of-session notice) made one in the meantime.
    """
    wanted = {r["s"] for r in records}
    rows = {sid: (digest, as_utc(started)) for sid, digest, started in session.execute(
        select(UssdSession.session_id, UssdSession.phone_hash, UssdSession.started_at)
        .where(UssdSession.session_id.in_(wanted)))}  # fmt: skip
    firsts = {r["s"]: r["m"] for r in records if r.get("m")}
    erased = erasures(
        sorted({d for d, _ in rows.values()} | {m.get("phone_hash", "") for m in firsts.values()} - {""})
    )
    gone = {sid for sid, (digest, started) in rows.items()
            if begun_before_erasure(started.timestamp(), erased.get(digest))}  # fmt: skip
    if gone:
        session.execute(delete(UssdSession).where(UssdSession.session_id.in_(gone)))
    known = set(rows) - gone
    for sid, m in firsts.items():
        started = as_utc(datetime.fromisoformat(m["started_at"]))
        if sid in rows or begun_before_erasure(started.timestamp(), erased.get(m.get("phone_hash", ""))):
            continue
        insert_ignore(session, UssdSession, **{**m, "started_at": started})
        known.add(sid)
    written = 0
    for r in records:
        if r["s"] not in known:  # erased since
            continue
        at = as_utc(datetime.fromisoformat(r["at"]))
        step = {
            "session_id": r["s"],
            "seq": r["n"],
            "user_input": r["i"],
            "screen": r["r"],
            "server_ms": r["ms"],
        }
        if insert_ignore(session, UssdStep, at=at, **step):
            written += 1
        if r.get("o"):
            language = {"language": r["l"]} if r.get("l") else {}
            session.execute(
                update(UssdSession)
                .where(UssdSession.session_id == r["s"])
                .values(outcome=r["o"], ended_at=at, **language)
            )
    return written
