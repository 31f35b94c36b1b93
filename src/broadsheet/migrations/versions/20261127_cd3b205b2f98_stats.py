"""stats: per-minute and daily view rows, site days, top lists, the day's salt and visitor
marks; subscribers.signup_path and indexes on when they confirmed and left

Revision ID: cd3b205b2f98
Revises: 21a109a28af7
Created: 2026-11-27 20:30:00
"""

import sqlalchemy as sa
from alembic import op

from broadsheet.extensions import UTCDateTime

revision = "cd3b205b2f98"
down_revision = "21a109a28af7"
branch_labels = None
depends_on = None


def _figures() -> list[sa.Column]:
    return [
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("referrer", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "stats_minutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("minute", UTCDateTime(timezone=True), nullable=False),
        *_figures(),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_stats_minutes_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_minutes")),
        sa.UniqueConstraint("minute", "path", "referrer", "source", name="uq_stats_minutes_key"),
    )
    op.create_index("ix_stats_minutes_minute", "stats_minutes", ["minute"], unique=False)
    op.create_table(
        "stats_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_figures(),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_stats_days_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_days")),
        sa.UniqueConstraint("day", "path", "referrer", "source", name="uq_stats_days_key"),
    )
    op.create_index("ix_stats_days_day", "stats_days", ["day"], unique=False)
    op.create_index("ix_stats_days_post", "stats_days", ["post_id", "day"], unique=False)
    op.create_table(
        "stats_site_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_site_days")),
    )
    op.create_table(
        "stats_tops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=500), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_stats_tops_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_tops")),
    )
    op.create_index("ix_stats_tops_list", "stats_tops", ["days", "kind", "rank"], unique=False)
    op.create_table(
        "stats_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stats_salts")),
    )
    op.create_table(
        "stats_visitors",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("mark", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day", "mark", name=op.f("pk_stats_visitors")),
    )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signup_path", sa.String(length=500), nullable=True))
        batch_op.create_index("ix_subscribers_confirmed_at", ["confirmed_at"], unique=False)
        batch_op.create_index("ix_subscribers_unsubscribed_at", ["unsubscribed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index("ix_subscribers_unsubscribed_at")
        batch_op.drop_index("ix_subscribers_confirmed_at")
        batch_op.drop_column("signup_path")
    op.drop_table("stats_visitors")
    op.drop_index("ix_stats_tops_list", table_name="stats_tops")
    op.drop_table("stats_tops")
    op.drop_table("stats_site_days")
    op.drop_table("stats_salts")
    op.drop_index("ix_stats_days_post", table_name="stats_days")
    op.drop_index("ix_stats_days_day", table_name="stats_days")
    op.drop_table("stats_days")
    op.drop_index("ix_stats_minutes_minute", table_name="stats_minutes")
    op.drop_table("stats_minutes")
