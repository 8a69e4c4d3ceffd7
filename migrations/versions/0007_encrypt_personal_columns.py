"""Names, numbers and message texts encrypted at rest (AES-GCM, keys from ENCRYPTION_KEYS).

Columns that held a number or a short text become TEXT (a token is longer than its clear
value), then every existing value is encrypted with the current key. Downgrade decrypts them
and narrows the columns again. The keys are the running app's (`flask db upgrade`), or the
environment's settings, handed over by `cli.alembic_config`.

This revision imports no application module: the token format and the batched rewrite are
copied here as they were when it was written (services/sealing.py and models/encrypted.py of
that day), so that a later change to those modules cannot change what it does to a database.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# (table, column, type before this revision)
COLUMNS = (
    ("returnee", "phone_e164", sa.String(length=20)),
    ("returnee", "first_name", sa.String(length=30)),
    ("outbound_sms", "to_e164", sa.String(length=20)),
    ("outbound_sms", "body", sa.Text()),
    ("inbound_sms", "from_e164", sa.String(length=20)),
    ("inbound_sms", "text", sa.Text()),
    ("ussd_step", "user_input", sa.String(length=200)),
    ("referral_event", "note", sa.String(length=200)),
)

TOKEN_VERSION = "v1"  # a token is v1:<key id>:<base64url(nonce + ciphertext + tag)>
NONCE = 12
BATCH = 500


class _Unreadable(ValueError):
    """A token whose key is missing, or which was altered: counted, never guessed at."""


class _Keyring:
    """AES-256-GCM under named keys, the first encrypting and all decrypting (frozen copy)."""

    def __init__(self, keys: Sequence[tuple[str, bytes]]) -> None:
        if not keys:
            raise RuntimeError("migration 0007 needs ENCRYPTION_KEYS: run it with `flask db upgrade`")
        self.current = keys[0][0]
        self._aeads = {kid: AESGCM(key) for kid, key in keys}

    def encrypt(self, text: str) -> str:
        nonce = os.urandom(NONCE)
        blob = nonce + self._aeads[self.current].encrypt(nonce, text.encode(), None)
        return f"{TOKEN_VERSION}:{self.current}:{base64.urlsafe_b64encode(blob).decode()}"

    def decrypt(self, token: str) -> str:
        aead = self._aeads.get(_key_id(token) or "")
        if aead is None:
            raise _Unreadable(token[:20])
        try:
            blob = base64.urlsafe_b64decode(token.split(":", 2)[2])
            if len(blob) <= NONCE:
                raise InvalidTag
            return aead.decrypt(blob[:NONCE], blob[NONCE:], None).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise _Unreadable(token[:20]) from None


def _key_id(token: str) -> str | None:
    version, sep, rest = token.partition(":")
    kid, sep2, _ = rest.partition(":")
    return kid if version == TOKEN_VERSION and sep and sep2 and kid else None


def is_token(value: str) -> bool:
    return _key_id(value) is not None


def rewrite_column(table_name: str, column_name: str, change: Callable[[str], str | None]) -> int:
    """Every non-null value through `change` (None: leave it), in batches of raw values; returns
    how many could not be read. An update applies only if the value is still the one read."""
    connection = op.get_bind()
    t = sa.table(table_name, sa.column("id", sa.Integer), sa.column(column_name, sa.Text))
    value_column = t.c[column_name]
    after, unreadable = 0, 0
    while True:
        rows = connection.execute(
            sa.select(t.c.id, value_column)
            .where(t.c.id > after, value_column.is_not(None))
            .order_by(t.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return unreadable
        for row_id, value in rows:
            try:
                new = change(value)
            except _Unreadable:
                unreadable += 1
                continue
            if new is not None and new != value:
                connection.execute(
                    sa.update(t).where(t.c.id == row_id, value_column == value).values({column_name: new})
                )
        after = rows[-1][0]


def _keyring() -> _Keyring:
    return _Keyring(op.get_context().config.attributes.get("encryption_keys") or ())


def _retype(table: str, widen: bool) -> None:
    with op.batch_alter_table(table) as batch:
        for t, name, before in COLUMNS:
            if t == table and not isinstance(before, sa.Text):
                old, new = (before, sa.Text()) if widen else (sa.Text(), before)
                batch.alter_column(name, existing_type=old, type_=new)


def upgrade() -> None:
    keyring = _keyring()
    for table in dict.fromkeys(t for t, _, _ in COLUMNS):
        _retype(table, widen=True)
    for table, name, _ in COLUMNS:
        rewrite_column(table, name, lambda v: None if is_token(v) else keyring.encrypt(v))


def downgrade() -> None:
    keyring = _keyring()
    for table, name, _ in COLUMNS:
        unreadable = rewrite_column(table, name, lambda v: keyring.decrypt(v) if is_token(v) else None)
        if unreadable:
            raise RuntimeError(f"{table}.{name}: {unreadable} values do not decrypt with ENCRYPTION_KEYS")
    for table in dict.fromkeys(t for t, _, _ in COLUMNS):
        _retype(table, widen=False)
