"""Folding catalog text for each channel (GLOSSARY §2)."""

from __future__ import annotations

import pytest

from flows.text import to_gsm7, to_ussd
from gateway.segments import is_gsm7


@pytest.mark.parametrize(
    ("source", "ussd", "sms"),
    [
        ("Répondez à la demande", "Repondez a la demande", "Répondez à la demande"),
        ("Dɛmɛɲini kura", "Demenyini kura", "Dèmènyini kura"),
        ("Sɔrɔ ŋ", "Soro ng", "Sòrò ng"),
        ("Ɛ Ɔ Ɲ Ŋ", "E O Ny Ng", "E O Ny Ng"),
        ("clôturée, reçue, être, œuvre", "cloturee, recue, etre, oeuvre", "cloturée, recue, etre, oeuvre"),
        ("« d’accord »…", '" d\'accord "...', '" d\'accord "...'),
        ("bɔ̀", "bo", "bò"),  # a tone mark goes with the folding of its letter
    ],
)
def test_folding(source: str, ussd: str, sms: str) -> None:
    assert to_ussd(source) == ussd
    assert to_gsm7(source) == sms
    assert to_ussd(source).isascii() and is_gsm7(to_gsm7(source))
