"""Copies of the database that restore: PostgreSQL's own tools (pg_dump's custom format,
pg_restore), or SQLite's online backup, behind two functions.

A copy holds the personal columns encrypted, so it is worth nothing without ENCRYPTION_KEYS
(docs/operations.md says where they are kept); it is written under a temporary name and renamed,
so a copy that exists is whole. The password never goes on a command line (other users of the
machine can read those): it is handed to pg_dump and pg_restore in their environment.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url


class BackupFailed(RuntimeError):
    """pg_dump, pg_restore or SQLite refused; the message says why, without the password."""


def dump(database_url: str, target: Path) -> Path:
    """Copy the whole database to `target` (PostgreSQL: pg_dump -Fc; SQLite: a database file)."""
    url = make_url(database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        if url.get_backend_name() == "sqlite":
            with sqlite3.connect(url.database or "") as source, sqlite3.connect(partial) as copy:
                source.backup(copy)
        else:
            _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(partial)], url)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def restore(source: Path, database_url: str) -> None:
    """Load a copy made by `dump` into the (empty) database of `database_url`, all or nothing."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(source) as copy, sqlite3.connect(url.database or "") as target:
            copy.backup(target)
        return
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            str(source),
        ],
        url,
    )


def _run(command: list[str], url: URL) -> None:
    """Run a PostgreSQL client on `url`'s database; its error output becomes BackupFailed."""
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    where = [f"--dbname={url.database}"]
    host = url.host or url.query.get("host")  # ?host=/var/run/postgresql: a socket, peer login
    if host:
        where.append(f"--host={host if isinstance(host, str) else host[0]}")
    if url.port:
        where.append(f"--port={url.port}")
    if url.username:
        where.append(f"--username={url.username}")
    try:
        done = subprocess.run([*command, *where, "--no-password"], env=env, capture_output=True, text=True)
    except FileNotFoundError:
        raise BackupFailed(f"{command[0]} is not installed (apt install postgresql-client)") from None
    if done.returncode != 0:
        raise BackupFailed(f"{command[0]} failed: {done.stderr.strip()[-500:]}")
