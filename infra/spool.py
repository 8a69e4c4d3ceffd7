"""A local spool for gateway callbacks that arrive while the database is down.

Africa's Talking does not promise to send an incoming SMS or a delivery report again, so a
callback we cannot store is written here and answered 200; the worker's cron replays the spool
once the database answers. One sealed file per callback, written under a temporary name and
renamed, so a reader never sees half a record and no two writers share a file; the directory
is synced after the rename, so a power cut cannot lose a callback the gateway was told we have.
Records hold phone numbers, so they are sealed (AES-GCM) like everything personal outside the
database; those set aside (`rejected/`), and any a crash left half-written, are deleted after
the SMS retention period.
Replaying is idempotent: incoming SMS are keyed by the gateway's id, delivery statuses only
move forward, and an opt-out already recorded stays as it was.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from infra.clock import as_utc, utcnow
from infra.sealing import Sealer

log = logging.getLogger(__name__)

SEALING_PURPOSE = "callback-spool"
SUFFIX = ".rec"
NAME_TIME = "%Y%m%dT%H%M%S%f"  # a record's name starts with when it was spooled (UTC)
INCOMING, DELIVERY, OPTOUT = "incoming", "delivery", "optout"


@dataclass(frozen=True)
class Replayed:
    done: int = 0
    left: int = 0
    rejected: int = 0


class Spool:
    def __init__(self, directory: str | Path, secret: str) -> None:
        self.directory = Path(directory)
        self._sealer = Sealer(secret, SEALING_PURPOSE)

    def append(self, kind: str, fields: dict[str, str]) -> None:
        """Write one callback durably (fsync) before the gateway is told it was received."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = utcnow()
        name = f"{now.strftime(NAME_TIME)}-{uuid.uuid4().hex}"
        record = {"kind": kind, "fields": fields, "spooled_at": now.isoformat()}
        blob = self._sealer.seal(json.dumps(record).encode())
        temporary = self.directory / f".{name}.tmp"
        with temporary.open("wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(self.directory / f"{name}{SUFFIX}")
        _sync_directory(self.directory)

    def pending(self) -> list[Path]:
        """The spooled callbacks, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def replay(self, apply: Callable[[str, dict[str, str]], None]) -> Replayed:
        """Apply each record in order; stop at the first database outage and keep the rest.

        A record the database refuses for another reason (it cannot ever succeed) is moved to
        `rejected/` for an operator rather than block the records behind it.
        """
        done = rejected = 0
        files = self.pending()
        for index, path in enumerate(files):
            try:
                blob = path.read_bytes()
            except FileNotFoundError:  # another worker replayed it meanwhile (replays are idempotent)
                continue
            data = self._sealer.open(blob)
            if data is None:
                log.error("spool: %s cannot be opened (another SECRET_KEY?); set aside", path.name)
                self._set_aside(path)
                rejected += 1
                continue
            record = json.loads(data)
            try:
                apply(record["kind"], record["fields"])
            except OperationalError:
                log.warning("spool: database still unavailable; %d callback(s) kept", len(files) - index)
                return Replayed(done, len(files) - index, rejected)
            except DBAPIError as exc:
                log.error("spool: %s refused by the database (%s); set aside", path.name, type(exc).__name__)
                self._set_aside(path)
                rejected += 1
                continue
            path.unlink(missing_ok=True)
            done += 1
        return Replayed(done, 0, rejected)

    def _set_aside(self, path: Path) -> None:
        aside = self.directory / "rejected"
        aside.mkdir(mode=0o700, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.rename(aside / path.name)

    def purge_rejected(self, before: datetime) -> int:
        """Delete the records set aside, and the half-written ones a crash left, spooled before
        `before`; returns how many.

        They hold phone numbers and message texts, which the database keeps no longer than the
        SMS retention period either. A name that does not start with a time is left alone.
        """
        limit = as_utc(before)
        candidates = [*self.directory.glob(".*.tmp"), *(self.directory / "rejected").glob(f"*{SUFFIX}")]
        purged = 0
        for path in candidates:
            try:
                spooled = datetime.strptime(path.name.lstrip(".").split("-", 1)[0], NAME_TIME).replace(
                    tzinfo=UTC
                )
            except ValueError:
                continue
            if spooled < limit:
                try:
                    path.unlink()
                except FileNotFoundError:  # another purge took it
                    continue
                purged += 1
        return purged


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
