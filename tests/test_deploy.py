"""deploy/ as a newcomer meets it: the settings template names every setting, install.sh run twice
in a scratch root (commands that need the real system printed, not run) makes settings that a
production start accepts and keeps its secrets, the units pass `systemd-analyze verify`, and the
scripts pass shellcheck."""

from __future__ import annotations

import gc
import os
import re
import runpy
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path

import pytest

from app import create_app
from config import Settings, load_settings
from tests.conftest import app_settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
# Read by gunicorn.conf.py, not by config/
GUNICORN = {"WEB_CONCURRENCY", "WEB_THREADS"}


def env_file_values(path: Path) -> dict[str, str]:
    """The variables a unit's process gets, read the way deploy/sira-flask reads them (sh)."""
    out = subprocess.run(
        ["bash", "-c", 'set -a; . "$1"; env -0', "-", str(path)],
        env={"PATH": os.environ["PATH"]}, capture_output=True, check=True,
    ).stdout  # fmt: skip
    values = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    names = set(re.findall(r"^([A-Z_]+)=", path.read_text(), re.M))
    return {name: values[name] for name in names}


def test_the_settings_template_names_every_setting_and_nothing_else() -> None:
    names = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / "sira.env.template").read_text(), re.M))
    settings = {f.name.upper() for f in fields(Settings)}
    assert names - GUNICORN == settings


def install(root: Path) -> str:
    done = subprocess.run(
        ["bash", str(DEPLOY / "install.sh")],
        env={**os.environ, "SIRA_ROOT": str(root), "SIRA_DRY_RUN": "1", "SIRA_RELEASE": "scratch"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_install_in_a_scratch_root_twice_makes_production_settings_once(tmp_path: Path) -> None:
    first = install(tmp_path)
    env_file = tmp_path / "etc/sira/sira.env"
    values = env_file_values(env_file)
    # What a production start checks (PROMETHEUS_MULTIPROC_DIR is made by systemd-tmpfiles at boot).
    settings = load_settings({**values, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert settings.is_production and settings.database_url.startswith("postgresql+psycopg://sira@/sira")
    assert len(settings.encryption_keyring) == 1 and settings.callback_secrets
    assert oct(env_file.stat().st_mode & 0o777) == "0o640"
    assert "generated ENCRYPTION_KEYS" in first and "escrow" in first
    assert (tmp_path / "opt/sira/current").resolve() == tmp_path / "opt/sira/releases/scratch"
    assert (tmp_path / "opt/sira/releases/scratch/app.py").is_file()
    assert not (tmp_path / "opt/sira/releases/scratch/.git").exists()
    units = {p.name for p in (tmp_path / "etc/systemd/system").iterdir()}
    assert {"sira.target", "sira-callbacks@.service", "sira-admin@.service", "sira-worker@.service",
            "sira-smpp.service", "sira-backup.timer", "sira-.service.d"} <= units  # fmt: skip
    # the venv is made from the Debian python3 just installed, never from whatever `python3` comes
    # first on root's PATH (a pyenv or conda under /root, which the sira user cannot run)
    assert "+ /usr/bin/python3 -m venv " in first
    # A machine that already has the user (installed once before) is told so instead.
    has_user = subprocess.run(["id", "sira"], capture_output=True).returncode == 0
    user_step = "user sira exists" if has_user else "useradd --system"
    for command in (user_step, "CREATE ROLE sira LOGIN", "sira-flask db upgrade",
                    "enable --now sira.target sira-callbacks@5001 sira-callbacks@5002 sira-admin@5000"):  # fmt: skip
        assert command in first

    second = install(tmp_path)
    assert env_file_values(env_file) == values  # secrets once set are never replaced
    assert "generated" not in second and "release scratch is already installed" in second


def test_upgrade_migrates_then_restarts_the_callback_pools_one_at_a_time(tmp_path: Path) -> None:
    install(tmp_path)
    done = subprocess.run(
        ["bash", str(DEPLOY / "upgrade.sh")],
        env={**os.environ, "SIRA_ROOT": str(tmp_path), "SIRA_DRY_RUN": "1", "SIRA_RELEASE": "next"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    order = [
        "sira-flask backup", "releases/next/deploy/sira-flask db upgrade",
        "restart sira-callbacks@5001", "wait for http://127.0.0.1:5001/healthz",
        "restart sira-callbacks@5002", "wait for http://127.0.0.1:5002/healthz",
        "restart sira-admin@5000", "restart sira-worker@1", "restart sira-worker@2", "restart sira-smpp",
    ]  # fmt: skip
    at = [next(i for i, line in enumerate(lines) if step in line) for step in order]
    assert at == sorted(at), done.stdout
    assert "releases/scratch/deploy/sira-flask backup" in done.stdout  # with the code that wrote the data
    assert (tmp_path / "opt/sira/current").resolve() == tmp_path / "opt/sira/releases/next"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified as installed, with the shared drop-in; the code's path points at stand-in programs."""
    units, app = tmp_path / "units", tmp_path / "app"
    shutil.copytree(DEPLOY / "systemd", units)
    (app / ".venv/bin").mkdir(parents=True)
    for program in ("gunicorn", "flask"):
        (app / ".venv/bin" / program).write_text("#!/bin/sh\n")
        (app / ".venv/bin" / program).chmod(0o755)
    for path in units.rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace("/opt/sira/current", str(app)))
    names = ["sira.target", "sira-callbacks@5001.service", "sira-admin@5000.service", "sira-worker@1.service",
             "sira-smpp.service", "sira-backup.service", "sira-backup.timer"]  # fmt: skip
    done = subprocess.run(
        ["systemd-analyze", "verify", *names], cwd=units, capture_output=True, text=True, timeout=60,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
    )  # fmt: skip
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_scripts_pass_shellcheck() -> None:
    scripts = [str(p) for p in (*DEPLOY.glob("*.sh"), DEPLOY / "sira-flask")]
    done = subprocess.run(["shellcheck", "-x", *scripts], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_db_upgrade_writes_nothing_into_the_release(database_url: str, tmp_path: Path) -> None:
    """The release's code is root's and read-only to the sira user: `flask db upgrade` on PostgreSQL
    must not make an `instance/` folder in it (a fresh install stopped there: Permission denied)."""
    app = create_app(app_settings(database_url))
    unwritable = tmp_path / "release-file"
    unwritable.write_text("")  # no folder can be made under a file, even by root
    app.instance_path = str(unwritable / "instance")
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output


def test_a_web_worker_takes_the_loaded_app_out_of_the_cyclic_gc() -> None:
    """Issue #15's stall: a full collection walked every object of the loaded app (some 150,000)
    with the GIL held, stopping the worker's threads for 100-300 ms; frozen, they are not walked."""
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    gc.unfreeze()
    try:
        tracked = len(gc.get_objects())
        hooks["post_worker_init"](None)  # gunicorn calls it once the worker has loaded the app
        assert gc.get_freeze_count() > 0
        assert len(gc.get_objects()) < tracked / 10
    finally:
        gc.unfreeze()
