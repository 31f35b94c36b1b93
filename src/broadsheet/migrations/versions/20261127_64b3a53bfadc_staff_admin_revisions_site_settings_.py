"""staff admin: revisions, site settings, deactivated staff; posts.email_on_publish

Revision ID: 64b3a53bfadc
Revises: f6f02c370397
Created: 2026-11-27 00:42:20.186252
"""

import sqlalchemy as sa
from alembic import op

import broadsheet.extensions

revision = "64b3a53bfadc"
down_revision = "f6f02c370397"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("posts_per_page", sa.Integer(), nullable=False),
        sa.Column("updated_at", broadsheet.extensions.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_settings")),
    )
    op.create_table(
        "post_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", broadsheet.extensions.UTCDateTime(timezone=True), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("custom_excerpt", sa.Text(), nullable=True),
        sa.Column("featured", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("meta_title", sa.String(length=300), nullable=True),
        sa.Column("meta_description", sa.String(length=500), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_post_revisions_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_post_revisions_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_post_revisions")),
    )
    with op.batch_alter_table("post_revisions", schema=None) as batch_op:
        batch_op.create_index("ix_post_revisions_post", ["post_id", "id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "deactivated_at", broadsheet.extensions.UTCDateTime(timezone=True), nullable=True
            )
        )

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_on_publish", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("email_on_publish")

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("deactivated_at")

    with op.batch_alter_table("post_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_post_revisions_post")

    op.drop_table("post_revisions")
    op.drop_table("site_settings")
