"""Names, numbers and message texts are encrypted at rest, keys rotate, and a wrong key says so.

The at-rest checks read the database raw (SQL text, and the SQLite file itself) after a whole
referral has gone through USSD, the worker and SMS, on both back-ends.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command as alembic
from flask import Flask
from redis import Redis
from sqlalchemy import create_engine, select, text

import models
from app import create_app
from cli import alembic_config
from config import DEV_ENCRYPTION_KEY, ConfigError, load_settings
from infra.sealing import Keyring, Undecryptable
from models import InboundSms, OutboundSms, Returnee, UssdSession, UssdStep
from models.db import make_session_factory
from models.encrypted import encrypted_columns
from models.phone import phone_hash
from services.erasure import erase_returnee
from tests.conftest import (
    ENCRYPTION_KEYS,
    PHONE_HASH_KEY,
    LiveServer,
    Phone,
    app_settings,
    flush_transcripts,
)
from tests.gateway_helpers import EmulatorProcess
from tests.journeys import RETURNEE, ask_for_help, code_in, run_worker, seeded_app, send_from_phone
from web.context import sira

KEY_A = "a:" + base64.urlsafe_b64encode(b"A" * 32).decode().rstrip("=")
KEY_B = "b:" + base64.urlsafe_b64encode(b"B" * 32).decode().rstrip("=")
NAME = "Kadiatou"
DIGITS = RETURNEE[4:]  # the number without +223, as it might be stored in any format
APEJ = "+22370000002"


def raw_values(database_url: str) -> str:
    """Every value of every table, read with SQL text (no column types, so nothing is decrypted)."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in models.Base.metadata.sorted_tables
            for row in connection.execute(text(f"SELECT * FROM {table.name}"))
        ]
    engine.dispose()
    return "\n".join(rows)


def encrypted_raw(database_url: str) -> list[str]:
    """The raw non-null values of the encrypted columns."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        values = [
            v
            for table, column in encrypted_columns(models.Base.metadata)
            for v in connection.execute(
                text(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL")
            ).scalars()
        ]
    engine.dispose()
    return values


def test_a_whole_referral_leaves_no_clear_name_or_number_in_the_database(
    empty_database_url: str, redis: Redis, gateway: EmulatorProcess, app_port: int, backend: str
) -> None:
    url = empty_database_url
    alembic.upgrade(alembic_config(url), "head")
    app = seeded_app(url, gateway)
    with LiveServer(app, app_port) as server:
        code = code_in(ask_for_help(Phone(server.url, number=RETURNEE), name=NAME))
        run_worker(url, gateway)
        send_from_phone(gateway, APEJ, f"OK {code}")  # the alert to APEJ names the returnee
        send_from_phone(gateway, RETURNEE, f"Merci, c'est {NAME} {RETURNEE}")
        run_worker(url, gateway)
        flush_transcripts(url)  # the transcript buffer, as the worker's cron moves it

    with sira(app).sessions() as db:  # the application reads them in clear
        returnee = db.scalar(select(Returnee))
        assert (returnee.first_name, returnee.phone_e164) == (NAME, RETURNEE)
        assert any(NAME in m.body and RETURNEE in m.body for m in db.scalars(select(OutboundSms)))
        assert any(NAME in m.text for m in db.scalars(select(InboundSms)))
        assert NAME in [s.user_input for s in db.scalars(select(UssdStep))]
    sira(app).sessions.kw["bind"].dispose()

    stored = raw_values(url)
    assert "v1:test:" in stored
    assert NAME not in stored and DIGITS not in stored
    if backend == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        on_disk = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert NAME.encode() not in on_disk and DIGITS.encode() not in on_disk


def _write_personal_rows(app: Flask) -> None:
    with sira(app).sessions() as db:
        digest = phone_hash(RETURNEE, PHONE_HASH_KEY)
        db.add(Returnee(phone_hash=digest, phone_e164=RETURNEE, first_name=NAME))
        for i in range(3):
            db.add(OutboundSms(to_e164=RETURNEE, to_hash=digest, body=f"Bonjour {NAME} {i}", purpose="test"))
        db.add(InboundSms(gateway_id="in-1", from_e164=RETURNEE, from_hash=digest, to="7472", text=NAME,
                          sent_at=datetime.now(UTC)))  # fmt: skip
        db.add(UssdSession(session_id="s-1", phone_hash=digest, service_code="*384*7472#"))
        db.flush()
        db.add(UssdStep(session_id="s-1", seq=1, user_input=NAME, screen="Votre prenom ?", server_ms=1.0))
        db.commit()


def _read_personal_rows(app: Flask) -> list[str]:
    with sira(app).sessions() as db:
        returnee = db.scalar(select(Returnee))
        return [
            returnee.first_name,
            returnee.phone_e164,
            *(f"{m.to_e164} {m.body}" for m in db.scalars(select(OutboundSms).order_by(OutboundSms.id))),
            *(f"{m.from_e164} {m.text}" for m in db.scalars(select(InboundSms))),
            *(s.user_input for s in db.scalars(select(UssdStep))),
        ]


def test_rotation_moves_every_value_to_the_new_key_so_the_old_one_can_go(
    database_url: str, redis: Redis
) -> None:
    _write_personal_rows(create_app(app_settings(database_url, encryption_keys=KEY_A)))
    expected = [
        NAME,
        RETURNEE,
        *(f"{RETURNEE} Bonjour {NAME} {i}" for i in range(3)),
        f"{RETURNEE} {NAME}",
        NAME,
    ]

    new_only = create_app(app_settings(database_url, encryption_keys=KEY_B))
    with pytest.raises(Undecryptable, match="key 'a', which is not in ENCRYPTION_KEYS"):
        _read_personal_rows(new_only)
    refused = new_only.test_cli_runner().invoke(args=["rotate-keys"])
    assert refused.exit_code == 1 and "11 values do not decrypt" in refused.output

    both = create_app(app_settings(database_url, encryption_keys=f"{KEY_B},{KEY_A}"))
    result = both.test_cli_runner().invoke(args=["rotate-keys", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "outbound_sms.body: 3 values, 3 re-encrypted, 0 unreadable" in result.output
    assert "11 values re-encrypted with key 'b'" in result.output
    assert all(v.startswith("v1:b:") for v in encrypted_raw(database_url))
    again = both.test_cli_runner().invoke(args=["rotate-keys"])
    assert again.exit_code == 0 and "0 values re-encrypted" in again.output

    assert _read_personal_rows(create_app(app_settings(database_url, encryption_keys=KEY_B))) == expected


def test_a_wrong_key_is_a_clear_error_not_garbage(database_url: str, redis: Redis) -> None:
    _write_personal_rows(create_app(app_settings(database_url)))
    same_name_other_key = "test:" + base64.urlsafe_b64encode(b"x" * 32).decode()
    with pytest.raises(Undecryptable, match="does not decrypt with key 'test'"):
        _read_personal_rows(create_app(app_settings(database_url, encryption_keys=same_name_other_key)))


def test_a_tampered_value_is_detected(app: Flask, database_url: str) -> None:
    _write_personal_rows(app)
    engine = create_engine(database_url)
    with engine.begin() as connection:
        token = connection.execute(text("SELECT first_name FROM returnee")).scalar_one()
        flipped = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
        connection.execute(text("UPDATE returnee SET first_name = :v"), {"v": flipped})
    engine.dispose()
    with pytest.raises(Undecryptable, match="altered"):
        _read_personal_rows(app)


def test_encrypted_columns_cannot_be_compared_by_mistake() -> None:
    with pytest.raises(TypeError, match="keyed hash"):
        select(Returnee).where(Returnee.phone_e164 == RETURNEE)
    select(Returnee).where(Returnee.phone_e164.is_(None))  # testing for absence still works


def test_the_migration_encrypts_existing_rows_and_its_downgrade_decrypts_them(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    keys = load_settings(encryption_keys=ENCRYPTION_KEYS).encryption_keyring
    keyring = Keyring(keys)
    alembic.upgrade(alembic_config(url), "0006")
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO returnee (id, phone_hash, phone_e164, language, first_name, created_at, updated_at) "
                 "VALUES (1, 'h', :phone, 'fr', :name, :now, :now)"),
            {"phone": RETURNEE, "name": NAME, "now": now},
        )  # fmt: skip
        connection.execute(
            text("INSERT INTO outbound_sms (id, to_e164, to_hash, body, purpose, segments, status, attempts, "
                 "next_attempt_at, created_at) VALUES (1, :phone, 'h', :body, 'test', 1, 'pending', 0, :now, :now)"),
            {"phone": RETURNEE, "body": f"Bonjour {NAME}", "now": now},
        )  # fmt: skip
        connection.execute(
            text("INSERT INTO outbound_sms (id, to_e164, to_hash, body, purpose, segments, status, attempts, "
                 "next_attempt_at, created_at) VALUES (2, '', '', '[erased]', 'test', 1, 'failed', 0, :now, :now)"),
            {"now": now},
        )  # fmt: skip
    alembic.upgrade(alembic_config(url, keys), "head")

    stored = raw_values(url)
    assert NAME not in stored and DIGITS not in stored
    assert len(encrypted_raw(url)) == 6 and all(v.startswith("v1:test:") for v in encrypted_raw(url))
    sessions = make_session_factory(url, keyring)
    with sessions() as db:
        returnee = db.get(Returnee, 1)
        assert (returnee.first_name, returnee.phone_e164) == (NAME, RETURNEE)
        assert [(m.to_e164, m.body) for m in db.scalars(select(OutboundSms).order_by(OutboundSms.id))] == [
            (RETURNEE, f"Bonjour {NAME}"),
            ("", "[erased]"),
        ]
    sessions.kw["bind"].dispose()

    alembic.downgrade(alembic_config(url, keys), "0006")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT first_name, phone_e164 FROM returnee")).one() == (
            NAME,
            RETURNEE,
        )
        assert (
            connection.execute(text("SELECT body FROM outbound_sms WHERE id = 1")).scalar_one()
            == f"Bonjour {NAME}"
        )
    engine.dispose()


def test_the_migrations_downgrade_refuses_values_it_cannot_decrypt_and_leaves_them(
    empty_database_url: str,
) -> None:
    """Migration 0007 carries its own copy of the token format: a key it lacks is an error, not garbage."""
    url = empty_database_url
    alembic.upgrade(alembic_config(url), "0006")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO returnee (id, phone_hash, phone_e164, language, first_name, created_at, updated_at) "
                 "VALUES (1, 'h', :phone, 'fr', :name, :now, :now)"),
            {"phone": RETURNEE, "name": NAME, "now": datetime.now(UTC)},
        )  # fmt: skip
    alembic.upgrade(alembic_config(url, load_settings(encryption_keys=KEY_A).encryption_keyring), "head")
    with pytest.raises(RuntimeError, match=r"returnee\.phone_e164: 1 values do not decrypt"):
        alembic.downgrade(
            alembic_config(url, load_settings(encryption_keys=KEY_B).encryption_keyring), "0006"
        )
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT phone_e164, first_name FROM returnee")).one()
    engine.dispose()
    assert all(value.startswith("v1:a:") for value in stored)
    reader = Keyring(load_settings(encryption_keys=KEY_A).encryption_keyring)
    assert tuple(reader.decrypt(value) for value in stored) == (RETURNEE, NAME)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nocolon", "kid:key entries"),
        ("bad kid!:" + "A" * 43, "kid:key entries"),
        ("a:" + base64.urlsafe_b64encode(b"short").decode(), "32 random bytes"),
        ("a:not*base64*at*all*not*base64*at*all*not*", "32 random bytes"),
        (f"{KEY_A},{KEY_A}", "appears twice"),
    ],
)
def test_malformed_encryption_keys_stop_the_start(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"ENCRYPTION_KEYS": value})


def test_production_refuses_to_start_without_its_own_encryption_keys() -> None:
    env = {
        "ENV": "production",
        "SECRET_KEY": "s" * 40,
        "PHONE_HASH_KEY": "p" * 40,
        "CALLBACK_SECRET": "c" * 40,
    }
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS must be set in production"):
        load_settings(env)
    dev_key = "dev:" + base64.urlsafe_b64encode(DEV_ENCRYPTION_KEY[1]).decode()
    with pytest.raises(ConfigError, match="ENCRYPTION_KEYS must be set in production"):
        load_settings({**env, "ENCRYPTION_KEYS": dev_key})
    keyring = load_settings({**env, "ENCRYPTION_KEYS": f"{KEY_B}, {KEY_A}"}).encryption_keyring
    assert [kid for kid, _ in keyring] == ["b", "a"] and keyring[0][1] == b"B" * 32
    assert load_settings({}).encryption_keyring == (DEV_ENCRYPTION_KEY,)


def test_an_erasure_leaves_not_even_the_ciphertext_in_the_sqlite_file(
    app: Flask, database_url: str, backend: str
) -> None:
    if backend != "sqlite":
        pytest.skip("PostgreSQL keeps dead rows until VACUUM; dropping a rotated-out key covers them")
    _write_personal_rows(app)
    tokens = [v for v in encrypted_raw(database_url) if v.startswith("v1:")]
    with sira(app).sessions() as db:
        erase_returnee(db, db.scalar(select(Returnee)))
        db.commit()
        db.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    on_disk = Path(database_url.removeprefix("sqlite:///")).read_bytes()
    assert tokens and not [t for t in tokens if t.encode() in on_disk]
