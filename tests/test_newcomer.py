"""What a newcomer meets first: `make run` with a port taken, and a README that stands alone."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from config import demo_numbers
from models.phone import to_e164
from tests.conftest import ROOT, free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")
SEEDED = (ROOT / "seed" / "directory.hsds.json").read_text(encoding="utf-8")


PORTS = ("WEB_PORT", "EMULATOR_PORT", "SMPP_PORT", "SMPP_PHONES_PORT")


@pytest.mark.parametrize("taken_name", PORTS)
def test_make_run_with_a_port_taken_says_which_and_how_to_choose_another_and_starts_nothing(
    tmp_path: Path, taken_name: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {**{name: str(free_port()) for name in PORTS}, taken_name: str(port)}
        env = {**os.environ, **ports, "DATABASE_URL": f"sqlite:///{tmp_path / 'sira.db'}"}
        result = subprocess.run(
            [str(ROOT / "scripts" / "run")], env=env, capture_output=True, text=True, timeout=30
        )
    assert result.returncode != 0
    assert f"port {port} ({taken_name}) is taken" in result.stderr, result.stderr
    suggested = int(re.search(rf"{taken_name}=(\d+) make run", result.stderr).group(1))  # how to choose
    assert suggested != port and str(suggested) not in ports.values()
    assert len(result.stderr.splitlines()) == 1, result.stderr  # only the port that is taken
    assert result.stdout == "" and not (tmp_path / "sira.db").exists()  # nothing started, nothing migrated


def test_the_run_script_hint_dials_a_demo_returnee_not_a_provider() -> None:
    hint = re.search(r"flask --app app ussd (\d+)", (ROOT / "scripts" / "run").read_text()).group(1)
    assert to_e164(hint, "ML") in demo_numbers()
    assert to_e164(hint, "ML") not in SEEDED  # no provider of the sample directory


def test_the_demo_numbers_are_fictitious_returnees_read_from_the_sample_data() -> None:
    numbers = demo_numbers()
    assert numbers and all(re.fullmatch(r"\+2237000\d{4}", n) for n in numbers)  # the fictitious block
    assert not any(n in SEEDED for n in numbers)  # no provider of the sample directory


def test_the_readme_stands_alone_and_its_examples_dial_demo_numbers() -> None:
    assert "shared folder" not in README and "PRODUCT.md" not in README and "../shared" not in README
    setup = README.split("## Set up", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    assert re.findall(r"^make \w+", setup, re.M) == ["make run", "make test"]
    dialled = set(re.findall(r"flask --app app ussd (\d+)", README))
    assert dialled and {to_e164(n, "ML") for n in dialled} <= set(demo_numbers())
