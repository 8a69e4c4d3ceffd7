"""What a USSD session knew when it began, to rebuild it from the gateway's history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 01:44:53.230156
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ussd_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ussd_session", schema=None) as batch_op:
        batch_op.drop_column("origin")
