"""Indexes for what every admin page reads: the header's count of referrals waiting for a
coordinator (past a deadline, at the desk, flagged) and each route's messages of the last 24 hours.

Without them, PostgreSQL read the whole referral table for the header of every page (8-10 ms at
100,000 referrals) and the whole outbox for the SMS log and the Queues page (25 ms at 200,000
messages): see bench/README.md, admin_pages.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 11:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SENT = "status = 'sent'"  # written out: a revision imports no application module
UNASSIGNED = "provider_id IS NULL"
FLAGGED = "flagged_at IS NOT NULL"


def upgrade() -> None:
    # Built CONCURRENTLY on PostgreSQL: deploy/upgrade.sh migrates while the old code still serves,
    # and a plain CREATE INDEX would hold the outbox's and the referrals' writes until it is done.
    with op.get_context().autocommit_block():
        op.create_index("ix_referral_sent_assigned_at", "referral", ["assigned_at"], postgresql_concurrently=True,
                        sqlite_where=sa.text(SENT), postgresql_where=sa.text(SENT))  # fmt: skip
        op.create_index("ix_referral_unassigned_status", "referral", ["status"], postgresql_concurrently=True,
                        sqlite_where=sa.text(UNASSIGNED), postgresql_where=sa.text(UNASSIGNED))  # fmt: skip
        op.create_index("ix_referral_flagged_at", "referral", ["flagged_at"], postgresql_concurrently=True,
                        sqlite_where=sa.text(FLAGGED), postgresql_where=sa.text(FLAGGED))  # fmt: skip
        op.create_index(
            "ix_outbound_sms_accepted_at", "outbound_sms", ["accepted_at"], postgresql_concurrently=True
        )


def downgrade() -> None:
    op.drop_index("ix_outbound_sms_accepted_at", table_name="outbound_sms")
    op.drop_index("ix_referral_flagged_at", table_name="referral")
    op.drop_index("ix_referral_unassigned_status", table_name="referral")
    op.drop_index("ix_referral_sent_assigned_at", table_name="referral")
