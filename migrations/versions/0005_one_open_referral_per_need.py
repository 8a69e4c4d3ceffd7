"""One open referral per returnee and need, enforced by the database (a partial unique index).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 03:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN_SQL = (
    "status IN ('new', 'sent', 'accepted') OR (status IN ('declined', 'expired') AND provider_id IS NULL)"
)


def upgrade() -> None:
    op.create_index(
        "uq_referral_open_need",
        "referral",
        ["returnee_id", "requested_category"],
        unique=True,
        sqlite_where=sa.text(OPEN_SQL),
        postgresql_where=sa.text(OPEN_SQL),
    )


def downgrade() -> None:
    op.drop_index("uq_referral_open_need", table_name="referral")
