"""The CNRM directory, referrals with their events, and the SMS outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:39:48.459913
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "category",
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("sms_label", sa.String(length=30), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_category")),
    )
    op.create_table(
        "provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("national", sa.Boolean(), nullable=False),
        sa.Column("daily_capacity", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("contact_phone", sa.String(length=20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider")),
        sa.UniqueConstraint("slug", name=op.f("uq_provider_slug")),
    )
    op.create_table(
        "region",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("part_of", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_region")),
    )
    op.create_table(
        "provider_category",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["category.code"],
            name=op.f("fk_provider_category_category_code_category"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider.id"],
            name=op.f("fk_provider_category_provider_id_provider"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "category_code", name=op.f("pk_provider_category")),
    )
    op.create_table(
        "provider_number",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=60), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider.id"],
            name=op.f("fk_provider_number_provider_id_provider"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_number")),
        sa.UniqueConstraint("phone_hash", name=op.f("uq_provider_number_phone_hash")),
    )
    with op.batch_alter_table("provider_number", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_provider_number_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "provider_region",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("region_code", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["provider.id"],
            name=op.f("fk_provider_region_provider_id_provider"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["region_code"],
            ["region.code"],
            name=op.f("fk_provider_region_region_code_region"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "region_code", name=op.f("pk_provider_region")),
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("returnee_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("requested_category", sa.String(length=30), nullable=False),
        sa.Column("region", sa.String(length=20), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(["category"], ["category.code"], name=op.f("fk_referral_category_category")),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_referral_provider_id_provider")
        ),
        sa.ForeignKeyConstraint(
            ["returnee_id"],
            ["returnee.id"],
            name=op.f("fk_referral_returnee_id_returnee"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_code")),
    )
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_provider_id"), ["provider_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_returnee_id"), ["returnee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_status"), ["status"], unique=False)

    op.create_table(
        "outbound_sms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_e164", sa.String(length=20), nullable=False),
        sa.Column("to_hash", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=20), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("purpose", sa.String(length=30), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=True),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("gateway_id", sa.String(length=100), nullable=True),
        sa.Column("gateway_status", sa.String(length=40), nullable=True),
        sa.Column("cost", sa.String(length=30), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivery_status", sa.String(length=40), nullable=True),
        sa.Column("delivery_reason", sa.String(length=100), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_outbound_sms_referral_id_referral"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_sms")),
        sa.UniqueConstraint("gateway_id", name=op.f("uq_outbound_sms_gateway_id")),
    )
    with op.batch_alter_table("outbound_sms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbound_sms_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outbound_sms_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_outbound_sms_referral_id"), ["referral_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_sms_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_sms_to_hash"), ["to_hash"], unique=False)

    op.create_table(
        "referral_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["provider.id"], name=op.f("fk_referral_event_provider_id_provider")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_referral_event_referral_id_referral"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_event")),
    )
    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_event_referral_id"), ["referral_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("referral_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_event_referral_id"))

    op.drop_table("referral_event")
    with op.batch_alter_table("outbound_sms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_sms_to_hash"))
        batch_op.drop_index(batch_op.f("ix_outbound_sms_status"))
        batch_op.drop_index(batch_op.f("ix_outbound_sms_referral_id"))
        batch_op.drop_index(batch_op.f("ix_outbound_sms_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_outbound_sms_created_at"))

    op.drop_table("outbound_sms")
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_status"))
        batch_op.drop_index(batch_op.f("ix_referral_returnee_id"))
        batch_op.drop_index(batch_op.f("ix_referral_provider_id"))
        batch_op.drop_index(batch_op.f("ix_referral_created_at"))

    op.drop_table("referral")
    op.drop_table("provider_region")
    with op.batch_alter_table("provider_number", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_number_provider_id"))

    op.drop_table("provider_number")
    op.drop_table("provider_category")
    op.drop_table("region")
    op.drop_table("provider")
    op.drop_table("category")
