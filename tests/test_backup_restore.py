"""A backup restores: `flask backup`, then `flask restore` into an empty database, and the restored
app reads every encrypted column with the same ENCRYPTION_KEYS; with other keys it says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

import models
from app import create_app
from models.encrypted import encrypted_columns
from tests.conftest import Phone, app_settings, flush_transcripts
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, ask_for_help, code_in, run_worker, seeded_app, send_from_phone
from web.context import sira

APEJ = "+22370000002"
OTHER_KEYS = "other:b3RoZXItc2lyYS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU"


@pytest.fixture
def app(database_url: str, redis: Redis, gateway: EmulatorProcess) -> Flask:
    return seeded_app(database_url, gateway)


def plain_values(app: Flask) -> dict[str, list[str]]:
    """Every encrypted column's values, decrypted by the app's keys, in a stable order."""
    values = {}
    with sira(app).sessions() as session:
        for table_name, column_name in encrypted_columns(models.Base.metadata):
            table = models.Base.metadata.tables[table_name]
            column = table.c[column_name]
            rows = session.execute(select(column).where(column.is_not(None)).order_by(table.c.id))
            values[f"{table_name}.{column_name}"] = [value for (value,) in rows]
    return values


@pytest.fixture
def lived_in(live_server, gateway: EmulatorProcess, database_url: str, app: Flask) -> dict[str, list[str]]:
    """A referral's whole life: USSD registration and request, the SMS, the provider's decline with a
    reason, the transcript; afterwards every encrypted column holds something."""
    code = code_in(ask_for_help(Phone(live_server.url, number=RETURNEE)))
    run_worker(database_url, gateway)
    send_from_phone(gateway, APEJ, f"NON {code} trop loin pour elle")
    run_worker(database_url, gateway)
    flush_transcripts(database_url)
    values = plain_values(app)
    assert all(values.values()), {name: len(v) for name, v in values.items()}
    return values


def test_a_backup_restored_into_an_empty_database_reads_every_encrypted_column(
    app: Flask, lived_in: dict[str, list[str]], empty_database_url: str, tmp_path: Path
) -> None:
    dumped = app.test_cli_runner().invoke(args=["backup", "--to", str(tmp_path / "sira.dump")])
    assert dumped.exit_code == 0, dumped.output
    assert (tmp_path / "sira.dump").stat().st_size > 0
    assert not list(tmp_path.glob("*.partial"))

    restored_app = create_app(app_settings(empty_database_url))
    restored = restored_app.test_cli_runner().invoke(args=["restore", str(tmp_path / "sira.dump")])
    assert restored.exit_code == 0, restored.output
    assert "every encrypted value reads" in restored.output
    assert plain_values(restored_app) == lived_in
    with sira(restored_app).sessions() as session:
        assert session.scalar(select(func.count()).select_from(models.Referral)) == 1


def test_a_restore_with_other_keys_says_the_copy_is_unreadable(
    app: Flask, lived_in: dict[str, list[str]], empty_database_url: str, tmp_path: Path
) -> None:
    assert app.test_cli_runner().invoke(args=["backup", "--to", str(tmp_path / "sira.dump")]).exit_code == 0
    keyless = create_app(app_settings(empty_database_url, encryption_keys=OTHER_KEYS))
    result = keyless.test_cli_runner().invoke(args=["restore", str(tmp_path / "sira.dump")])
    assert result.exit_code != 0
    assert "do not decrypt with ENCRYPTION_KEYS" in result.output
    assert "returnee.first_name: 1 values, 1 unreadable" in result.output


def test_a_restore_into_a_database_that_has_tables_changes_nothing(
    app: Flask, lived_in: dict[str, list[str]], tmp_path: Path
) -> None:
    assert app.test_cli_runner().invoke(args=["backup", "--to", str(tmp_path / "sira.dump")]).exit_code == 0
    result = app.test_cli_runner().invoke(args=["restore", str(tmp_path / "sira.dump")])
    assert result.exit_code != 0
    assert "has tables" in result.output
    assert plain_values(app) == lived_in
