"""media: images, their variants, and which posts use them

Revision ID: a353fcb02619
Revises: 5c1e8a9d3f27
Created: 2026-11-27 20:00:00
"""

import sqlalchemy as sa
from alembic import op

from broadsheet.extensions import UTCDateTime

revision = "a353fcb02619"
down_revision = "5c1e8a9d3f27"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alt", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("pending", "ready", "failed", name="imagestate", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("source_key", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["users.id"],
            name=op.f("fk_images_uploaded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("uid", name=op.f("uq_images_uid")),
    )
    op.create_index("ix_images_created", "images", ["created_at", "id"], unique=False)
    op.create_index("ix_images_state", "images", ["state", "updated_at"], unique=False)
    op.create_table(
        "image_variants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_variants_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_variants")),
    )
    op.create_index(
        op.f("ix_image_variants_image_id"), "image_variants", ["image_id"], unique=False
    )
    op.create_table(
        "image_usages",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_image_usages_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_image_usages_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "post_id", name=op.f("pk_image_usages")),
    )
    op.create_index(op.f("ix_image_usages_post_id"), "image_usages", ["post_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_image_usages_post_id"), table_name="image_usages")
    op.drop_table("image_usages")
    op.drop_index(op.f("ix_image_variants_image_id"), table_name="image_variants")
    op.drop_table("image_variants")
    op.drop_index("ix_images_state", table_name="images")
    op.drop_index("ix_images_created", table_name="images")
    op.drop_table("images")
