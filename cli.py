"""Flask CLI commands: migrations, start-up checks, a terminal phone, the worker and the SMPP connector."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click
import requests
from alembic import command as alembic
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import inspect, make_url

from config import load_settings
from infra.health import ServiceDown, require_services
from web.context import sira

ROOT = Path(__file__).resolve().parent
MIGRATIONS = ROOT / "migrations"
SEED = ROOT / "seed" / "directory.hsds.json"

db_cli = AppGroup("db", help="Create or migrate the database schema (Alembic).")
directory_cli = AppGroup("directory", help="The CNRM directory in and out of HSDS 3.0 (Open Referral).")


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(check_command)
    app.cli.add_command(ussd_phone)
    app.cli.add_command(smpp_connector_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(seed_command)
    app.cli.add_command(directory_cli)
    app.cli.add_command(rotate_keys_command)
    app.cli.add_command(rehash_phones_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


def alembic_config(url: str, encryption_keys: Sequence[tuple[str, bytes]] | None = None) -> AlembicConfig:
    """Alembic's configuration; `encryption_keys` (the environment's if None) encrypt existing
    values. Revisions import no application module, so they are handed the keys, not a keyring."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    config.attributes["encryption_keys"] = (
        encryption_keys if encryption_keys is not None else load_settings().encryption_keyring
    )
    return config


def _app_alembic_config() -> AlembicConfig:
    keys = sira().settings.encryption_keyring
    return alembic_config(current_app.config["DATABASE_URL"], keys)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Migrate the schema up to REVISION (default: the newest)."""
    url = make_url(current_app.config["DATABASE_URL"])
    if url.get_backend_name() == "sqlite" and url.database:  # the file's folder (instance/ by default);
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # never the release's, read-only
    alembic.upgrade(_app_alembic_config(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION."""
    alembic.downgrade(_app_alembic_config(), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a revision from the models; read it and rename it before committing."""
    alembic.revision(alembic_config(current_app.config["DATABASE_URL"]), message=message, autogenerate=True)


@db_cli.command("current")
def db_current() -> None:
    """Show the schema revision the database is at."""
    alembic.current(alembic_config(current_app.config["DATABASE_URL"]))


@click.command("check")
@with_appcontext
def check_command() -> None:
    """Exit non-zero, naming the culprit, unless the database and Redis answer."""
    try:
        require_services(sira().sessions, sira().redis)
    except ServiceDown as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("database and redis answer")


@click.command("ussd")
@with_appcontext
@click.argument("phone")
@click.option(
    "--url",
    default=None,
    help="Webhook URL (default: PUBLIC_BASE_URL/ussd); with smpp, the gateway emulator's.",
)
@click.option("--inputs", default=None, help='Comma-separated answers, e.g. "1,1,Awa,2"; else interactive.')
@click.option(
    "--session", "session_id", default=None, help="Session id (default: a new random one; at only)."
)
@click.option(
    "--transport",
    type=click.Choice(["at", "smpp"]),
    default="at",
    show_default=True,
    help="at: Africa's Talking's webhook; smpp: dial through the USSD gateway emulator and the SMPP connector.",
)
def ussd_phone(
    phone: str, url: str | None, inputs: str | None, session_id: str | None, transport: str
) -> None:
    """A terminal phone: dial the service and answer its screens, as a handset would."""
    answers = inputs.split(",") if inputs is not None else None

    def next_answer() -> str | None:
        if answers is None:
            return click.prompt(">", default="", show_default=False)
        if not answers:
            return None
        answer = answers.pop(0)
        click.echo(f"> {answer}")
        return answer

    if transport == "smpp":
        settings = sira().settings
        _smpp_phone(phone, url or settings.smpp_emulator_url or "http://127.0.0.1:8026", next_answer)
    else:
        _at_phone(phone, url, session_id, next_answer)


def _at_phone(
    phone: str, url: str | None, session_id: str | None, next_answer: Callable[[], str | None]
) -> None:
    import uuid

    from web.callbacks import callback_url

    settings = sira().settings
    url = url or callback_url(settings.public_base_url, "/ussd", settings.callback_secrets)
    session_id = session_id or f"cli-{uuid.uuid4().hex[:12]}"
    history: list[str] = []
    while True:
        form = {
            "sessionId": session_id,
            "serviceCode": settings.ussd_service_code,
            "phoneNumber": phone,
            "networkCode": "61001",
            "text": "*".join(history),
        }
        try:
            response = requests.post(url, data=form, timeout=10)
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach {url}: {exc}") from None
        if response.status_code != 200:
            raise click.ClickException(f"{response.status_code}: {response.text}")
        body = response.text
        click.echo(body[4:] if body[:4] in ("CON ", "END ") else body)
        click.echo("-" * 24)
        if not body.startswith("CON "):
            return
        answer = next_answer()
        if answer is None:
            return
        history.append(answer)


def _smpp_phone(phone: str, base: str, next_answer: Callable[[], str | None]) -> None:
    """Dial through the gateway emulator: its deliver_sm goes to the connector, its screens come back."""
    from models.phone import InvalidPhone, to_e164

    settings = sira().settings
    try:
        e164 = to_e164(phone, settings.default_region_code)
    except InvalidPhone:
        raise click.ClickException(f"{phone!r} is not a phone number") from None
    path, data = "/ussd/dial", {"phone": e164}
    while True:
        try:
            response = requests.post(base.rstrip("/") + path, data=data, timeout=30)
        except requests.RequestException as exc:
            raise click.ClickException(f"cannot reach the USSD gateway emulator at {base}: {exc}") from None
        body = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        if response.status_code != 200:
            raise click.ClickException(f"{response.status_code}: {body.get('error', response.text)}")
        click.echo(body["text"])
        click.echo("-" * 24)
        if body["end"]:
            return
        answer = next_answer()
        if answer is None:
            return
        path, data = "/ussd/answer", {"session": body["session"], "text": answer}


@click.command("smpp-connector")
@with_appcontext
def smpp_connector_command() -> None:
    """Bind to the operators' USSD gateways (SMPP_CONNECTIONS) and serve their sessions until stopped."""
    import logging
    import signal
    import threading

    from gateway.smpp import Connector
    from models.phone import phone_hash

    settings = sira().settings
    try:
        require_services(sira().sessions, sira().redis)
    except ServiceDown as exc:
        raise click.ClickException(str(exc)) from None
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key = settings.phone_hash_key
    connector = Connector(
        settings.smpp_links,
        sira().converse,
        service_code=settings.ussd_service_code,
        redact=lambda value: phone_hash(value, key),
        workers=settings.smpp_workers,
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    connector.start()
    click.echo("SMPP connector: " + ", ".join(link.label for link in settings.smpp_links))
    stop.wait()
    connector.stop()


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop once the queues are empty (tests, one-off runs).")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker on Sira's queues, after checking that the database and Redis answer."""
    from infra.connection import worker_redis
    from workers.cron import start_cron
    from workers.runner import quiet_routine_logs, run_jobs

    sessions, redis = sira().sessions, sira().redis
    wait = 0.5
    while True:  # a worker waits out an outage, even at start (honcho stops all when one exits)
        try:
            require_services(sessions, redis)
            break
        except ServiceDown as exc:
            if burst:
                raise click.ClickException(str(exc)) from None
            click.echo(f"{exc}: the worker waits for it", err=True)
            time.sleep(wait)
            wait = min(wait * 2, 5.0)
    settings = sira().settings
    redis = worker_redis(settings.redis_url, settings.sentinel_addresses, settings.redis_sentinel_master)
    quiet_routine_logs()  # before the cron's thread starts queueing
    if not burst:
        start_cron(redis, settings)
    run_jobs(redis, settings, burst=burst)


def phone_hasher(settings: object) -> Callable[[str], tuple[str, str]]:
    """A typed number -> (E.164, keyed hash) with the app's settings; ValueError if it is not a number."""
    from models.phone import PhoneNumber

    def hash_phone(raw: str) -> tuple[str, str]:
        return PhoneNumber.parse(raw, settings)  # InvalidPhone is a ValueError

    return hash_phone


def import_hsds(path: Path, dry_run: bool = False) -> None:
    """Import an HSDS directory file in one transaction, print what changed; refuse it whole on any problem."""
    import json

    from services.directory_hsds import import_directory
    from services.hsds_schema import HsdsInvalid

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{path.name} is not JSON: {exc}") from None
    hash_phone = phone_hasher(sira().settings)
    with sira().sessions() as session:
        try:
            report = import_directory(session, document, hash_phone)
        except HsdsInvalid as exc:
            session.rollback()
            problems = "\n".join(f"  {p}" for p in exc.problems)
            raise click.ClickException(f"{path.name} refused, nothing was changed:\n{problems}") from None
        if dry_run:
            session.rollback()
        else:
            session.commit()
    for line in report.lines():
        click.echo(line)
    if dry_run:
        click.echo("dry run: nothing was written")


@click.command("seed")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=SEED)
@with_appcontext
def seed_command(path: Path) -> None:
    """Load the sample directory (HSDS 3.0: needs, regions, providers); running it again updates it."""
    import_hsds(path)


@directory_cli.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@with_appcontext
def directory_export(output: Path | None) -> None:
    """Write the directory as an HSDS 3.0 JSON data package, validated against the published schema."""
    import json

    from services.directory_hsds import export_directory
    from services.hsds_schema import tables

    with sira().sessions() as session:
        package = export_directory(session)
    tables(package)  # an export that would not import is a bug: refuse to write it
    text = json.dumps(package, ensure_ascii=False, indent=1) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


@directory_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and say what would change, writing nothing.")
@with_appcontext
def directory_import(path: Path, dry_run: bool) -> None:
    """Create or update needs, regions and providers from an HSDS 3.0 file; a broken file changes nothing."""
    import_hsds(path, dry_run)


@click.command("rotate-keys")
@click.option("--batch", default=500, show_default=True, help="Rows per transaction.")
@with_appcontext
def rotate_keys_command(batch: int) -> None:
    """Re-encrypt every stored name, number and text with the first key of ENCRYPTION_KEYS.

    Run it after putting a new key first; once it reports nothing unreadable, the old key can
    leave ENCRYPTION_KEYS. Running it again rewrites nothing.
    """
    import models
    from models.encrypted import keyring_of, rotate

    engine = sira().sessions.kw["bind"]
    results = rotate(engine, models.Base.metadata, max(1, batch))
    for r in results:
        click.echo(f"{r.column}: {r.values} values, {r.rewritten} re-encrypted, {r.unreadable} unreadable")
    unreadable = sum(r.unreadable for r in results)
    click.echo(
        f"{sum(r.rewritten for r in results)} values re-encrypted with key {keyring_of(engine.dialect).current!r}"
    )
    if unreadable:
        raise click.ClickException(
            f"{unreadable} values do not decrypt with ENCRYPTION_KEYS: keep their key until they are re-encrypted"
        )


@click.command("rehash-phones")
@with_appcontext
def rehash_phones_command() -> None:
    """Rotate PHONE_HASH_KEY: re-hash every phone under the new key (PREVIOUS_PHONE_HASH_KEY is the old one).

    Stop the web and the worker first; Redis keys named by the old hashes are dropped.
    """
    from services.rehash import rehash_phones

    settings = sira().settings
    old, new = settings.previous_phone_hash_key, settings.phone_hash_key
    if not old or old == new:
        raise click.ClickException(
            "set PREVIOUS_PHONE_HASH_KEY to the old key and PHONE_HASH_KEY to the new one"
        )
    from infra.keys import REHASH_DROPPED, STEP_BUFFER

    if sira().redis.llen(STEP_BUFFER):
        raise click.ClickException(
            "USSD steps are still buffered under the old hashes: start a worker until it has flushed them"
        )
    with sira().sessions() as session:
        counts = rehash_phones(session, old, new)
        session.commit()
    redis = sira().redis
    for prefix in REHASH_DROPPED:
        for key in redis.scan_iter(match=f"{prefix}*", count=500):
            redis.delete(key)
    click.echo(", ".join(f"{name}: {n}" for name, n in counts.items()))


@click.command("backup")
@click.option("--to", "target", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The file to write (default: BACKUP_DIR/sira-<UTC time>.dump).")  # fmt: skip
@with_appcontext
def backup_command(target: Path | None) -> None:
    """Copy the database (pg_dump's custom format); useless without ENCRYPTION_KEYS, kept apart."""
    from datetime import UTC, datetime

    from infra.backup import BackupFailed, dump

    settings = sira().settings
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = target or Path(settings.backup_dir) / f"sira-{stamp}.dump"
    try:
        written = dump(settings.database_url, target)
    except BackupFailed as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{written} ({written.stat().st_size} bytes)")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def restore_command(source: Path) -> None:
    """Load a backup into the empty database of DATABASE_URL, then read every encrypted value
    with ENCRYPTION_KEYS: a copy whose keys are lost fails here, not on the day it is needed."""
    import models
    from infra.backup import BackupFailed, restore
    from models.encrypted import check_readable

    engine = sira().sessions.kw["bind"]
    if inspect(engine).get_table_names():
        raise click.ClickException(
            "the database of DATABASE_URL has tables: restore into an empty one (createdb), nothing was changed"
        )
    try:
        restore(source, current_app.config["DATABASE_URL"])
    except BackupFailed as exc:
        raise click.ClickException(str(exc)) from None
    engine.dispose()  # connections opened before the restore may have cached the empty schema
    results = check_readable(engine, models.Base.metadata)
    for r in results:
        click.echo(f"{r.column}: {r.values} values, {r.unreadable} unreadable")
    unreadable = sum(r.unreadable for r in results)
    if unreadable:
        raise click.ClickException(
            f"restored, but {unreadable} values do not decrypt with ENCRYPTION_KEYS: find the keys of that time"
        )
    click.echo(f"restored {source.name}: every encrypted value reads with ENCRYPTION_KEYS")
