"""Start-up and health: a clear message when a setting is wrong or a service is down."""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import text

from app import create_app
from config import ConfigError, load_settings
from infra.health import check_database
from infra.sealing import Keyring
from models.db import make_session_factory
from tests.conftest import ROOT, app_settings


def test_healthz_reports_both_services(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}
    assert "testing" not in response.text  # anyone may ask: the environment is not theirs to know


def test_healthz_names_what_is_down(database_url: str, redis) -> None:
    app = create_app(app_settings(database_url, redis_url="redis://127.0.0.1:1/0"))
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert (
        body["status"] == "down: redis"
        and body["database"] == "ok"
        and "redis not answering" in body["redis"]
    )


def test_a_database_down_is_named_on_healthz_and_explained_in_the_log_only(
    redis, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "no-such-directory" / "sira.db"
    app = create_app(app_settings(f"sqlite:///{missing}"))
    with caplog.at_level("WARNING", logger="infra.health"):
        response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["database"] == "database not answering (OperationalError)" and body["redis"] == "ok"
    assert "unable to open database file" in caplog.text  # the driver's reason, for the operator
    assert "unable to open" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must start with"),
        ({"USSD_SESSION_TTL_SECONDS": "ten"}, "USSD_SESSION_TTL_SECONDS must be a number"),
        ({"ENV": "staging"}, "ENV must be"),
        ({"ENV": "production"}, "SECRET_KEY must be set"),
        ({"RAISE_STEP_ERRORS": "maybe"}, "RAISE_STEP_ERRORS must be true or false"),
        ({"ENV": "production", "RAISE_STEP_ERRORS": "1"}, "RAISE_STEP_ERRORS is for tests"),
    ],
)
def test_malformed_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_postgresql_urls_get_the_psycopg_driver() -> None:
    assert (
        load_settings({"DATABASE_URL": "postgresql://u@h/db"}).database_url == "postgresql+psycopg://u@h/db"
    )


def test_an_empty_at_api_url_means_the_live_gateway_and_unset_means_the_emulator() -> None:
    """An operator who writes AT_API_URL= must not be sent to the local emulator by a default."""
    assert load_settings({"AT_API_URL": ""}).at_api_url == ""
    assert load_settings({}).at_api_url.startswith("http://127.0.0.1")
    assert load_settings({"DATABASE_URL": ""}).database_url.startswith("sqlite")  # others: empty is unset
    with pytest.raises(ConfigError, match="AT_API_URL"):
        load_settings({"AT_API_URL": "ftp://gateway"})


def test_check_command_fails_with_one_clear_line_when_redis_is_down(tmp_path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "check"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "redis not answering" in result.stderr and "Traceback" not in result.stderr


def _first_check(url: str, start: Any, answers: Any) -> None:
    """One process starting: a new engine, then the start-up check every server runs."""
    sessions = make_session_factory(url, Keyring([("k", b"A" * 32)]))
    start.wait()
    answers.put(check_database(sessions))


def test_processes_starting_together_on_a_new_sqlite_file_all_find_it_answering(tmp_path) -> None:
    """Web and worker (or two gunicorn pools) switch a new file to WAL at the same moment.

    SQLite refuses one of two simultaneous switches at once, busy time-out or not; before the
    fix about one start in fifteen of four processes failed with "database is locked".
    """
    forked = multiprocessing.get_context("fork")
    refused = []
    for trial in range(40):
        path = tmp_path / f"new{trial}.db"
        with sqlite3.connect(path) as made:  # as a migration leaves it: rollback-journal mode
            made.execute("CREATE TABLE t (a)")
        start, answers = forked.Barrier(4), forked.Queue()
        starting = [
            forked.Process(target=_first_check, args=(f"sqlite:///{path}", start, answers)) for _ in range(4)
        ]
        for process in starting:
            process.start()
        refused += [answer for answer in (answers.get(timeout=30) for _ in starting) if answer]
        for process in starting:
            process.join()
        with sqlite3.connect(path) as made:
            assert made.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert refused == []


def test_a_database_that_cannot_use_wal_keeps_its_mode_without_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In memory, SQLite answers the switch with its own mode: that is an answer, not a race to retry
    (before, each connection retried 50 times, 1.5 s)."""
    waits: list[float] = []
    monkeypatch.setattr("models.db.time.sleep", waits.append)
    sessions = make_session_factory("sqlite://", Keyring([("k", b"A" * 32)]))
    assert check_database(sessions) is None
    with sessions() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "memory"
    assert waits == []
