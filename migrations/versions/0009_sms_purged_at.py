"""When the retention purge blanked an SMS: encrypted texts cannot be compared in SQL, so the
purge marks the rows it has done instead of looking for its placeholder text.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 04:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("inbound_sms", "outbound_sms"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ("outbound_sms", "inbound_sms"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("purged_at")
