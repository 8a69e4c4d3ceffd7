"""Two-way SMS: incoming messages, opt-out and erasure on returnees, deadlines on referrals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 01:50:17.336602
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_sms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gateway_id", sa.String(length=100), nullable=False),
        sa.Column("from_e164", sa.String(length=20), nullable=False),
        sa.Column("from_hash", sa.String(length=64), nullable=False),
        sa.Column("to", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("link_id", sa.String(length=100), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sender_kind", sa.String(length=10), nullable=True),
        sa.Column("handled_as", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_sms")),
        sa.UniqueConstraint("gateway_id", name=op.f("uq_inbound_sms_gateway_id")),
    )
    with op.batch_alter_table("inbound_sms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_sms_from_hash"), ["from_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_inbound_sms_received_at"), ["received_at"], unique=False)

    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("feedback_requested_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("returnee", schema=None) as batch_op:
        batch_op.add_column(sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("erase_code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("erase_requested_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("returnee", schema=None) as batch_op:
        batch_op.drop_column("erase_requested_at")
        batch_op.drop_column("erase_code_hash")
        batch_op.drop_column("opted_out_at")

    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_column("feedback_requested_at")
        batch_op.drop_column("flagged_at")
        batch_op.drop_column("reminded_at")

    with op.batch_alter_table("inbound_sms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inbound_sms_received_at"))
        batch_op.drop_index(batch_op.f("ix_inbound_sms_from_hash"))

    op.drop_table("inbound_sms")
