"""`flask --app app ussd PHONE`: the terminal phone drives a running server's webhook over HTTP."""

from __future__ import annotations

from sqlalchemy import select

from models import Returnee


def test_terminal_phone_registers_non_interactively(app, live_server, db) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["ussd", "70000002", "--url", live_server.url + "/ussd", "--inputs", "3,3,Awa,2,3,1,1,1,1"]
    )
    assert result.exit_code == 0, result.output
    assert "Welcome to Sira" in result.output.replace("Bienvenue sur Sira", "Welcome to Sira")
    assert "> Awa" in result.output and "You are registered" in result.output
    assert db.scalar(select(Returnee)).phone_e164 == "+22370000002"


def test_terminal_phone_says_clearly_when_the_server_is_not_there(app) -> None:
    result = app.test_cli_runner().invoke(
        args=["ussd", "70000002", "--url", "http://127.0.0.1:1/ussd", "--inputs", ""]
    )
    assert result.exit_code != 0 and "cannot reach" in result.output


def test_terminal_phone_shows_the_reason_of_a_400(app, live_server) -> None:
    result = app.test_cli_runner().invoke(
        args=["ussd", "hello", "--url", live_server.url + "/ussd", "--inputs", ""]
    )
    assert result.exit_code != 0 and "phoneNumber is not a valid phone number" in result.output
