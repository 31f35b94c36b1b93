"""newsletter: a send's recipients are listed in steps (last_subscriber_id, listed_through)

Revision ID: c3d1e5a7b9f2
Revises: a59f0ef55a4d
Created: 2026-11-27 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "c3d1e5a7b9f2"
down_revision = "a59f0ef55a4d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Both nullable: sends made before this are completely listed (listed_through NULL).
    with op.batch_alter_table("newsletter_sends", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_subscriber_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("listed_through", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("newsletter_sends", schema=None) as batch_op:
        batch_op.drop_column("listed_through")
        batch_op.drop_column("last_subscriber_id")
