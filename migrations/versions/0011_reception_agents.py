"""Reception agents: a role that registers returnees on the spot, and the consent records naming
the agent who read the consent aloud.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 05:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROLES_BEFORE = "role IN ('admin', 'coordinator', 'viewer', 'provider')"
ROLES_AFTER = "role IN ('admin', 'coordinator', 'viewer', 'provider', 'agent')"


def upgrade() -> None:
    with op.batch_alter_table("admin_user", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_admin_user_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_admin_user_role"), ROLES_AFTER)
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.add_column(sa.Column("agent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_consent_record_agent_id_admin_user"),
            "admin_user",
            ["agent_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_consent_record_agent_id_admin_user"), type_="foreignkey")
        batch_op.drop_column("agent_id")
    op.execute("UPDATE admin_user SET active = false WHERE role = 'agent'")
    op.execute("UPDATE admin_user SET role = 'viewer' WHERE role = 'agent'")
    with op.batch_alter_table("admin_user", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_admin_user_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_admin_user_role"), ROLES_BEFORE)
