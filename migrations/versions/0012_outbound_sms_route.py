"""The route that took each outgoing SMS (SMS_ROUTES), for the admin and for per-route costs.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_sms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route", sa.String(length=30), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_sms", schema=None) as batch_op:
        batch_op.drop_column("route")
