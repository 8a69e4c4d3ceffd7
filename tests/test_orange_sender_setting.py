"""ORANGE_SENDER_ADDRESS has no default number: it is required, with a clear start-up error, only
where SMS go through Orange, and the local set-up (`make run`, tests) names a fictitious one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from app import create_app
from config import ConfigError, Settings, load_settings
from tests.conftest import ORANGE_SENDER, ROOT, app_settings

ORANGE_IN_USE = [
    {"SMS_GATEWAY": "orange"},
    {"SMS_ROUTES": "at=africastalking; orange=orange", "SMS_ROUTE_PREFIXES": "7=orange,at; *=at"},
    {"SMS_ROUTES": "at=africastalking; o=orange?api_url=https://api.orange.com"},
]


def test_no_number_is_written_as_the_default() -> None:
    assert Settings().orange_sender_address == ""
    assert load_settings({}).orange_sender_address == ""  # Africa's Talking alone: not needed


@pytest.mark.parametrize("environ", ORANGE_IN_USE)
def test_orange_in_use_without_a_sender_fails_at_start_up_naming_the_setting_and_its_form(
    environ: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match="ORANGE_SENDER_ADDRESS must be set") as refused:
        load_settings(environ)
    message = str(refused.value)
    assert "tel:+223" in message and "8 digits" in message  # the form expected
    assert not re.search(r"\d{6}", message)  # and no example number
    load_settings({**environ, "ORANGE_SENDER_ADDRESS": ORANGE_SENDER})


def test_an_orange_route_may_carry_its_own_sender_instead() -> None:
    routes = f"at=africastalking; o=orange?sender_address={quote(ORANGE_SENDER)}"  # + is a space
    assert load_settings({"SMS_ROUTES": routes}).orange_sender_address == ""
    with pytest.raises(ConfigError, match="ORANGE_SENDER_ADDRESS"):
        load_settings({"SMS_ROUTES": "at=africastalking; o=orange?sender_address=SIRA"})


def test_the_app_factory_refuses_to_start_with_the_error(database_url: str) -> None:
    settings = {**app_settings(database_url, sms_gateway="orange"), "orange_sender_address": ""}
    with pytest.raises(ConfigError, match="ORANGE_SENDER_ADDRESS must be set"):
        create_app(settings)


def test_the_flask_command_prints_the_error_in_one_line_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "SMS_GATEWAY": "orange", "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    env.pop("ORANGE_SENDER_ADDRESS", None)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "routes"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "ORANGE_SENDER_ADDRESS must be set" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and 'File "' not in result.stderr, result.stderr


def test_make_run_names_a_fictitious_sender_so_its_orange_face_works() -> None:
    script = (ROOT / "scripts" / "run").read_text(encoding="utf-8")
    # scripts/run's own line, run as it runs (the venv's python first): it must export the sample
    # number (seed/orange_sender.txt), which Orange's settings accept, not an empty value.
    line = next(line for line in script.splitlines() if line.startswith("ORANGE_SENDER_ADDRESS="))
    env = {k: v for k, v in os.environ.items() if k != "ORANGE_SENDER_ADDRESS"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$ORANGE_SENDER_ADDRESS"'], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ORANGE_SENDER and "export ORANGE_SENDER_ADDRESS" in script
    assert re.fullmatch(r"tel:\+2230\d{7}", ORANGE_SENDER)  # +223 then 0, a number no Malian line has
    assert load_settings({"SMS_GATEWAY": "orange", "ORANGE_SENDER_ADDRESS": ORANGE_SENDER})
