"""The referral a provider's SMS acted on: a decline reason or a note may describe the returnee,
so erasure and the retention purge blank the provider's own message along with the referral's.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 09:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_sms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("referral_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_inbound_sms_referral_id", ["referral_id"])
        batch_op.create_foreign_key(
            "fk_inbound_sms_referral_id_referral", "referral", ["referral_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_sms", schema=None) as batch_op:
        batch_op.drop_constraint("fk_inbound_sms_referral_id_referral", type_="foreignkey")
        batch_op.drop_index("ix_inbound_sms_referral_id")
        batch_op.drop_column("referral_id")
