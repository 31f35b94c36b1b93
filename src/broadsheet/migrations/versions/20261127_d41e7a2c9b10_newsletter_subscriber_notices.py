"""newsletter: subscriber_notices, the per-address cooldown of subscribe emails

Revision ID: d41e7a2c9b10
Revises: c3d1e5a7b9f2
Created: 2026-11-27 17:40:00
"""

import sqlalchemy as sa
from alembic import op

import broadsheet.extensions

revision = "d41e7a2c9b10"
down_revision = "c3d1e5a7b9f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscriber_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", broadsheet.extensions.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_notices_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriber_notices")),
    )
    with op.batch_alter_table("subscriber_notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscriber_notices_recent", ["subscriber_id", "sent_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriber_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriber_notices_recent")
    op.drop_table("subscriber_notices")
