"""`flask create-user`: the first account, scripted or prompted, with clear refusals."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.admin import AuditEntry, User


def run(app: Flask, *args: str, input: str | None = None):
    return app.test_cli_runner().invoke(args=["create-user", *args], input=input)


def test_create_user_with_a_password_in_a_script(app: Flask, db: Session) -> None:
    result = run(app, "Admin@Example.org", "--role", "admin", "--password", "long enough pw")
    assert result.exit_code == 0, result.output
    user = db.scalar(select(User))
    assert (user.email, user.role, user.active) == ("admin@example.org", "admin", True)
    assert user.password_matches("long enough pw") and "long enough pw" not in user.password_hash
    assert db.scalar(select(AuditEntry.action)) == "user.create"


def test_create_user_prompts_for_the_password(app: Flask, db: Session) -> None:
    result = run(app, "c@example.org", "--role", "coordinator", input="s3cret-enough\ns3cret-enough\n")
    assert result.exit_code == 0, result.output
    assert db.scalar(select(User)).password_matches("s3cret-enough")


def test_create_user_refuses_a_bad_role_a_duplicate_or_a_short_password(app: Flask, db: Session) -> None:
    bad_role = run(app, "a@example.org", "--role", "boss", "--password", "long enough pw")
    assert bad_role.exit_code == 2 and "'boss' is not one of" in bad_role.output
    assert run(app, "a@example.org", "--role", "viewer", "--password", "short").exit_code == 1
    assert run(app, "a@example.org", "--role", "viewer", "--password", "long enough pw").exit_code == 0
    duplicate = run(app, "A@example.org", "--role", "admin", "--password", "long enough pw")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    assert db.scalar(select(User.role)) == "viewer"


def test_a_provider_user_needs_a_known_provider(app: Flask, db: Session) -> None:
    assert app.test_cli_runner().invoke(args=["seed"]).exit_code == 0
    missing = run(app, "p@example.org", "--role", "provider", "--password", "long enough pw")
    assert missing.exit_code == 2 and "--provider" in missing.output
    unknown = run(
        app, "p@example.org", "--role", "provider", "--provider", "nope", "--password", "long enough pw"
    )
    assert unknown.exit_code == 1 and "no provider" in unknown.output
    ok = run(app, "p@example.org", "--role", "provider", "--provider", "apej", "--password", "long enough pw")
    assert ok.exit_code == 0, ok.output
    assert db.scalar(select(User.provider_id)) is not None
