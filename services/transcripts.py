"""USSD transcripts: every step, as the returnee saw it, for the coordinators.

A step that changes nothing in the database (navigation, a question answered) is not worth a
database round trip on the request path, which must stay fast: it is sealed and appended to a
Redis list in the same call that saves the session, and a worker job moves the list into the
database in batches. So is a step with effects, once its effects are committed (with the
session's row); a step whose state could not be saved (Redis down, a lost race) is written
directly. Inserts are idempotent on the session id and on (session, step number).

Erasure leaves a tombstone (infra/forgetting.py): no step of a session begun before its phone
was erased is written.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime

import msgspec
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from infra.forgetting import begun_before_erasure
from models.base import as_utc
from models.db import insert_ignore
from models.ussd import UssdSession, UssdStep

_ENCODE = msgspec.json.Encoder().encode  # built once; a tenth of the stdlib's time for a step's line
SEALING_PURPOSE = "ussd-steps"


# For some phone hashes, when each was erased (those never erased are left out).
Erasures = Callable[[Collection[str]], Mapping[str, float]]


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
    return _ENCODE(record)


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
