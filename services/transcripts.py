"""USSD transcripts: every step, as the returnee saw it, for the coordinators.

A step that changes nothing in the database (navigation, a question answered) is not worth a
database round trip on the request path, which must stay fast: it is sealed and appended to a
Redis list in the same call that saves the session, and a worker job moves the list into the
database in batches. So is a step with effects, once its effects are committed (with the
session's row); a step whose state could not be saved (Redis down, a lost race) is written
directly. Inserts are idempotent on the session id and on (session, step number).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.base import as_utc
from models.db import insert_ignore
from models.ussd import UssdSession, UssdStep

STEP_BUFFER = "ussd:steps"
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode  # built once, not per step
SEALING_PURPOSE = "ussd-steps"
ERASED_TTL_SECONDS = 2 * 24 * 3600  # far longer than a step waits in the buffer, dead list aside


def erased_key(phone_digest: str) -> str:
    """A tombstone: this phone was erased, so its buffered steps must not bring a session back."""
    return f"ussd:erased:{phone_digest}"


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


def write_steps(session: Session, records: list[dict], erased: Collection[str] = ()) -> int:
    """Insert buffered steps, creating the session rows that first steps carry.

    A first step of a phone in `erased` creates nothing, so none of that session's steps is kept.
    """
    for r in records:
        if r.get("m") and r["m"].get("phone_hash") not in erased:
            row = {**r["m"], "started_at": as_utc(datetime.fromisoformat(r["m"]["started_at"]))}
            insert_ignore(session, UssdSession, **row)
    wanted = {r["s"] for r in records}
    known = set(session.scalars(select(UssdSession.session_id).where(UssdSession.session_id.in_(wanted))))
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
