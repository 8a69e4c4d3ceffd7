"""Why a referral is flagged for a coordinator: the reason beside `flagged_at`.

Rows flagged before this revision get the reason their state tells: a "not helped" answer to the
closing question, a follow-up answered 3 (something else) or 2 (not served), no provider left (at
the coordination desk), else a provider that let its deadline pass (the only other place that
flagged).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("referral") as batch_op:
        batch_op.add_column(sa.Column("flag_reason", sa.String(length=12), nullable=True))
    op.execute(
        "UPDATE referral SET flag_reason = CASE"
        " WHEN feedback = 'not_served' THEN 'not_helped'"
        " WHEN EXISTS (SELECT 1 FROM follow_up f WHERE f.referral_id = referral.id AND f.status = 'needs_more')"
        " THEN 'follow_more'"
        " WHEN EXISTS (SELECT 1 FROM follow_up f WHERE f.referral_id = referral.id AND f.status = 'not_served')"
        " THEN 'follow_no'"
        " WHEN provider_id IS NULL THEN 'no_provider'"
        " ELSE 'no_answer' END"
        " WHERE flagged_at IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("referral") as batch_op:
        batch_op.drop_column("flag_reason")
