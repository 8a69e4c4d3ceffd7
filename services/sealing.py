"""Authenticated encryption (AES-GCM) for what must sit in Redis but may hold personal data.

USSD session states and buffered transcript steps hold answers such as a first name; Redis
keeps them only sealed. The key is derived from SECRET_KEY and a purpose, so one secret in the
environment serves every use without two uses sharing a key.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE = 12


class Sealer:
    def __init__(self, secret: str, purpose: str) -> None:
        self._aead = AESGCM(hashlib.sha256(f"sira:{purpose}:".encode() + secret.encode()).digest())

    def seal(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self._aead.encrypt(nonce, data, None)

    def open(self, blob: bytes | None) -> bytes | None:
        """The data, or None if there is none or it was sealed with another key (rotated)."""
        if not blob or len(blob) <= NONCE:
            return None
        try:
            return self._aead.decrypt(blob[:NONCE], blob[NONCE:], None)
        except InvalidTag:
            return None
