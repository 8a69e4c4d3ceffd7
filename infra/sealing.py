"""Authenticated encryption (AES-GCM): sealed Redis state, and personal columns at rest.

USSD session states and buffered transcript steps hold answers such as a first name; Redis
keeps them only sealed. Their key is derived from SECRET_KEY and a purpose, so one secret
serves every short-lived use without two uses sharing a key; losing it loses minutes of state.

Columns holding names, numbers and message texts are encrypted with a `Keyring` instead: named
keys from ENCRYPTION_KEYS, the first encrypting and all decrypting, so a key can be replaced
(`flask rotate-keys`) without a moment when stored values cannot be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12
TOKEN_VERSION = "v1"


def _seal(aead: AESGCM, data: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + aead.encrypt(nonce, data, None)


def _open(aead: AESGCM, blob: bytes) -> bytes:
    """The data; `InvalidTag` if the blob was altered or sealed with another key."""
    if len(blob) <= NONCE:
        raise InvalidTag
    return aead.decrypt(blob[:NONCE], blob[NONCE:], None)


class Sealer:
    def __init__(self, secret: str, purpose: str) -> None:
        self._aead = AESGCM(hashlib.sha256(f"sira:{purpose}:".encode() + secret.encode()).digest())

    def seal(self, data: bytes) -> bytes:
        return _seal(self._aead, data)

    def open(self, blob: bytes | None) -> bytes | None:
        """The data, or None if there is none or it was sealed with another key (rotated)."""
        if not blob:
            return None
        try:
            return _open(self._aead, blob)
        except InvalidTag:
            return None


class Undecryptable(ValueError):
    """A stored value cannot be read: its key is missing, or it was altered. Never guessed at."""


class Keyring:
    """Text <-> `v1:<key id>:<base64url(nonce + ciphertext + tag)>`, with the key named in the token."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self.current = keys[0][0]
        self.key_ids = tuple(kid for kid, _ in keys)
        self._aeads = {kid: AESGCM(key) for kid, key in keys}

    def encrypt(self, text: str) -> str:
        blob = _seal(self._aeads[self.current], text.encode())
        return f"{TOKEN_VERSION}:{self.current}:{base64.urlsafe_b64encode(blob).decode()}"

    def decrypt(self, token: str) -> str:
        kid = key_id(token)
        if kid is None:
            raise Undecryptable("the stored value is not an encrypted token (v1:<key id>:...)")
        aead = self._aeads.get(kid)
        if aead is None:
            raise Undecryptable(
                f"the stored value was encrypted with key {kid!r}, which is not in ENCRYPTION_KEYS"
            )
        try:
            return _open(aead, base64.urlsafe_b64decode(token.split(":", 2)[2])).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise Undecryptable(
                f"the stored value does not decrypt with key {kid!r}: it was altered, "
                "or the key under that name is not the one it was encrypted with"
            ) from None

    def is_current(self, token: str) -> bool:
        return key_id(token) == self.current


def key_id(token: str) -> str | None:
    """The key id a token names, or None if it is not a token."""
    version, sep, rest = token.partition(":")
    kid, sep2, _ = rest.partition(":")
    return kid if version == TOKEN_VERSION and sep and sep2 and kid else None
