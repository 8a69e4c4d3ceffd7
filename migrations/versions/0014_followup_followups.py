"""Follow-ups of outcomes: the SMS question asked days after a referral closed, and its answer.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follow_up",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("returnee_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_follow_up_referral_id_referral"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["returnee_id"],
            ["returnee.id"],
            name=op.f("fk_follow_up_returnee_id_returnee"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up")),
        sa.UniqueConstraint("referral_id", "day", name="uq_follow_up_referral_day"),
    )
    op.create_index(op.f("ix_follow_up_referral_id"), "follow_up", ["referral_id"], unique=False)
    op.create_index(op.f("ix_follow_up_returnee_id"), "follow_up", ["returnee_id"], unique=False)
    op.create_index("ix_follow_up_status_sent_at", "follow_up", ["status", "sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_follow_up_status_sent_at", table_name="follow_up")
    op.drop_index(op.f("ix_follow_up_returnee_id"), table_name="follow_up")
    op.drop_index(op.f("ix_follow_up_referral_id"), table_name="follow_up")
    op.drop_table("follow_up")
