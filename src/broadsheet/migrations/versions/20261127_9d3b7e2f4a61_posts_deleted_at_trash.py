"""content: posts.deleted_at, the trash (restorable for 30 days)

Revision ID: 9d3b7e2f4a61
Revises: e7a4c2b19d06
Created: 2026-11-27 19:00:00
"""

import sqlalchemy as sa
from alembic import op

from broadsheet.extensions import UTCDateTime

revision = "9d3b7e2f4a61"
down_revision = "e7a4c2b19d06"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deleted_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_posts_deleted_at", ["deleted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_deleted_at")
        batch_op.drop_column("deleted_at")
