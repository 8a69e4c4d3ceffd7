"""Returnees, their consent history, and USSD sessions with their steps.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 01:33:28.546386
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "returnee",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("first_name", sa.String(length=30), nullable=True),
        sa.Column("sex", sa.String(length=10), nullable=True),
        sa.Column("age_group", sa.String(length=10), nullable=True),
        sa.Column("region", sa.String(length=20), nullable=True),
        sa.Column("returned_from", sa.String(length=20), nullable=True),
        sa.Column("returned_since", sa.String(length=10), nullable=True),
        sa.Column("consent_version", sa.String(length=20), nullable=True),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_returnee")),
        sa.UniqueConstraint("phone_hash", name=op.f("uq_returnee_phone_hash")),
    )
    op.create_table(
        "ussd_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("service_code", sa.String(length=40), nullable=False),
        sa.Column("network_code", sa.String(length=10), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("end_status", sa.String(length=20), nullable=True),
        sa.Column("end_duration_ms", sa.Integer(), nullable=True),
        sa.Column("end_hops", sa.Integer(), nullable=True),
        sa.Column("end_error", sa.String(length=200), nullable=True),
        sa.Column("end_report", sa.JSON(), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ussd_session")),
        sa.UniqueConstraint("session_id", name=op.f("uq_ussd_session_session_id")),
    )
    with op.batch_alter_table("ussd_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ussd_session_phone_hash"), ["phone_hash"], unique=False)
        batch_op.create_index(batch_op.f("ix_ussd_session_started_at"), ["started_at"], unique=False)

    op.create_table(
        "consent_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("returnee_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["returnee_id"],
            ["returnee.id"],
            name=op.f("fk_consent_record_returnee_id_returnee"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_record")),
    )
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_record_returnee_id"), ["returnee_id"], unique=False)

    op.create_table(
        "ussd_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=100), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("user_input", sa.String(length=200), nullable=False),
        sa.Column("screen", sa.Text(), nullable=False),
        sa.Column("server_ms", sa.Double(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["ussd_session.session_id"],
            name=op.f("fk_ussd_step_session_id_ussd_session"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ussd_step")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_ussd_step_session_id")),
    )


def downgrade() -> None:
    op.drop_table("ussd_step")
    with op.batch_alter_table("consent_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_record_returnee_id"))

    op.drop_table("consent_record")
    with op.batch_alter_table("ussd_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ussd_session_started_at"))
        batch_op.drop_index(batch_op.f("ix_ussd_session_phone_hash"))

    op.drop_table("ussd_session")
    op.drop_table("returnee")
