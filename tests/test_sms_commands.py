"""Reading provider commands and returnee keywords as people really type them."""

from __future__ import annotations

import pytest

from flows.sms_commands import Command, Parsed, parse


@pytest.mark.parametrize(
    ("text", "command", "code", "rest"),
    [
        ("OK R7K3Q", Command.ACCEPT, "R7K3Q", ""),
        ("ok r7k3q", Command.ACCEPT, "R7K3Q", ""),
        ("  Ok,   R7K3Q. ", Command.ACCEPT, "R7K3Q", ""),
        ("OUI R7K3Q", Command.ACCEPT, "R7K3Q", ""),
        ("accept R7K3Q", Command.ACCEPT, "R7K3Q", ""),
        ("ɔwɔ R7K3Q", Command.ACCEPT, "R7K3Q", ""),
        ("òwò r7k3q", Command.ACCEPT, "R7K3Q", ""),
        ("NON R7K3Q pas de place cette semaine", Command.DECLINE, "R7K3Q", "pas de place cette semaine"),
        ("refus R7K3Q", Command.DECLINE, "R7K3Q", ""),
        ("Ayi R7K3Q", Command.DECLINE, "R7K3Q", ""),
        ("FINI R7K3Q", Command.CLOSE, "R7K3Q", ""),
        ("Terminé R7K3Q", Command.CLOSE, "R7K3Q", ""),
        ("laban R7K3Q", Command.CLOSE, "R7K3Q", ""),
        ("done", Command.CLOSE, None, ""),
        ("AIDE", Command.HELP, None, ""),
        ("dɛmɛ", Command.HELP, None, ""),
        ("statut", Command.STATUS, None, ""),
        ("Stop", Command.STOP, None, ""),
        ("START", Command.START, None, ""),
        ("supprimer", Command.ERASE, None, ""),
        ("SUPPRIMER 4821", Command.ERASE, "4821", ""),
        ("1", Command.FEEDBACK, "1", ""),
        (" 2 ", Command.FEEDBACK, "2", ""),
        ("bonjour", Command.UNKNOWN, None, "BONJOUR"),
        ("", Command.UNKNOWN, None, ""),
        ("🙂🙂", Command.UNKNOWN, None, ""),
        ("OK R0K3Q", Command.ACCEPT, None, "R0K3Q"),  # 0 is never in a code
    ],
)
def test_parse(text: str, command: Command, code: str | None, rest: str) -> None:
    parsed = parse(text)
    assert (parsed.command, parsed.code, parsed.rest) == (command, code, rest)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("NON:R7K3Q plus de place", "plus de place"),
        ("non r7k3q, pas ce mois.", "pas ce mois"),
        ("NON R7K3Q", ""),
    ],
)
def test_decline_reason_is_kept_as_typed(text: str, reason: str) -> None:
    assert parse(text).rest == reason


def test_referral_codes_always_hold_a_letter() -> None:
    """An all-digit code would read as a PIN or a number; tests find codes as upper-case words."""
    from infra.referral_code import ALPHABET, LENGTH
    from models.referral import new_code

    codes = [new_code() for _ in range(5000)]
    assert all(len(c) == LENGTH and set(c) <= set(ALPHABET) and c.isupper() for c in codes)
    assert len(set(codes)) > 4990  # still random


def test_every_drawn_code_is_read_back_by_the_sms_parser_and_the_admin_search() -> None:
    """One format: what `new_code` draws, a provider's `OK <code>` and the admin's search accept."""
    from infra.referral_code import is_code
    from models.referral import new_code

    for code in (new_code() for _ in range(2000)):
        assert parse(f"ok {code.lower()}") == Parsed(Command.ACCEPT, code=code), code
        assert is_code(code), code


@pytest.mark.parametrize("word", ["R7K3O", "R7K3I", "R7K3L", "R7K3", "R7K3QQ", "R7K3-"])
def test_words_outside_the_code_format_are_not_codes(word: str) -> None:
    from infra.referral_code import is_code

    assert not is_code(word)
    assert parse(f"OK {word}").code is None
