"""Segment counting decides what an SMS costs; these are the edges that change the bill."""

from __future__ import annotations

import pytest

from gateway.segments import GSM7_BASIC, is_gsm7, segment_count


@pytest.mark.parametrize(
    ("text", "gsm7"),
    [
        ("Votre demande R7K3Q est enregistrée.", True),  # é, è, à, ù are in the GSM alphabet
        ("Ça va ? 50 € pour le transport {R7K3Q}", True),  # Ç basic, € and braces via the extension table
        ("Réponse: OK ^ ~ [ ] | \\", True),
        ("garçon", False),  # lowercase ç is not GSM
        ("fête", False),  # neither are the circumflexes French uses
        ("i ni ce ɲɔgɔn", False),  # Bambara letters
        ("back`tick", False),
        ("\x1b", False),  # the escape code is not a character of its own
    ],
)
def test_gsm7_alphabet_membership(text: str, gsm7: bool) -> None:
    assert is_gsm7(text) is gsm7


def test_basic_table_is_the_full_gsm_03_38_alphabet_without_escape() -> None:
    assert len(GSM7_BASIC) == 127


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets: extension characters count double
        ("€" * 81, 2),
        ("a" * 159 + "{", 2),
        ("a" * 152 + "{" + "a" * 152, 3),  # 306 septets, but an escape pair is never split across parts
        ("ê" * 70, 1),
        ("ê" * 71, 2),
        ("ê" * 134, 2),
        ("ê" * 135, 3),
        ("a" * 100 + "ç", 2),  # one non-GSM character makes the whole text UCS-2
        ("😀" * 35, 1),  # beyond the BMP: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_segment_count_for_gsm7_ucs2_and_extension_characters(text: str, parts: int) -> None:
    assert segment_count(text) == parts
