"""Erasure's durable record: the phone's keyed hash and the erasure's time, for when Redis forgot.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_hash", name=op.f("pk_erasure")),
    )
    op.create_index(op.f("ix_erasure_erased_at"), "erasure", ["erased_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_erasure_erased_at"), table_name="erasure")
    op.drop_table("erasure")
