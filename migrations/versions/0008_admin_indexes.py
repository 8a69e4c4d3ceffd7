"""Indexes for the admin's pages at 100,000 referrals: lists walk (created_at, id), the dashboard
reads acceptances and registrations by date.

The single-column created_at indexes of referral and outbound_sms are replaced by (created_at, id),
which serves every query the old ones did.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30 10:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_created_at")
        batch_op.create_index("ix_referral_created_at_id", ["created_at", "id"], unique=False)
    with op.batch_alter_table("outbound_sms", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_sms_created_at")
        batch_op.create_index("ix_outbound_sms_created_at_id", ["created_at", "id"], unique=False)
    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_event_to_status_at", ["to_status", "at", "referral_id"], unique=False
        )
    with op.batch_alter_table("returnee", schema=None) as batch_op:
        batch_op.create_index("ix_returnee_registered_at", ["registered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("returnee", schema=None) as batch_op:
        batch_op.drop_index("ix_returnee_registered_at")
    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_event_to_status_at")
    with op.batch_alter_table("outbound_sms", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_sms_created_at_id")
        batch_op.create_index("ix_outbound_sms_created_at", ["created_at"], unique=False)
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index("ix_referral_created_at_id")
        batch_op.create_index("ix_referral_created_at", ["created_at"], unique=False)
