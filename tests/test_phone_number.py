"""One helper reads a typed number and hashes it with the settings' region and key."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from config import load_settings
from models.phone import InvalidPhone, PhoneNumber


def test_a_typed_number_is_read_in_the_settings_region_and_hashed_with_their_key() -> None:
    settings = load_settings({"PHONE_HASH_KEY": "a key for this test only"})
    expected = hmac.new(b"a key for this test only", b"+22370000101", hashlib.sha256).hexdigest()
    assert PhoneNumber.parse(" 70 00 01 01 ", settings) == ("+22370000101", expected)
    assert PhoneNumber.parse("0022370000101", settings).digest == expected


def test_another_key_finds_another_digest() -> None:
    one, two = (load_settings({"PHONE_HASH_KEY": key}) for key in ("key one", "key two"))
    assert PhoneNumber.parse("70000101", one).digest != PhoneNumber.parse("70000101", two).digest


@pytest.mark.parametrize("raw", ["", "abc", "12", "+" + "1" * 40])
def test_what_is_no_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        PhoneNumber.parse(raw, load_settings({}))
