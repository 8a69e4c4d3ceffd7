"""The migrations alone build the schema the models describe, and go down again, on both back-ends."""

from __future__ import annotations

from alembic import command as alembic
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

import models
from cli import alembic_config


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), models.Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_to_nothing_and_back(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    alembic.upgrade(alembic_config(url), "head")
    alembic.downgrade(alembic_config(url), "base")
    alembic.upgrade(alembic_config(url), "head")
