"""Names, numbers and message texts encrypted at rest (AES-GCM, keys from ENCRYPTION_KEYS).

Columns that held a number or a short text become TEXT (a token is longer than its clear
value), then every existing value is encrypted with the current key. Downgrade decrypts them
and narrows the columns again. The keyring is the running app's (`flask db upgrade`) or, run
from elsewhere, the one the environment's settings describe.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from config import load_settings
from infra.sealing import Keyring
from models.encrypted import is_token, rewrite_column

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


def _keyring() -> Keyring:
    keyring = op.get_context().config.attributes.get("keyring")
    return keyring if keyring is not None else Keyring(load_settings().encryption_keyring)


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
        rewrite_column(op.get_bind(), table, name, lambda v: None if is_token(v) else keyring.encrypt(v))


def downgrade() -> None:
    keyring = _keyring()
    for table, name, _ in COLUMNS:
        counts = rewrite_column(
            op.get_bind(), table, name, lambda v: keyring.decrypt(v) if is_token(v) else None
        )
        if counts.unreadable:
            raise RuntimeError(
                f"{counts.column}: {counts.unreadable} values do not decrypt with ENCRYPTION_KEYS"
            )
    for table in dict.fromkeys(t for t, _, _ in COLUMNS):
        _retype(table, widen=False)
