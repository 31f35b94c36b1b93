"""newsletter opens and clicks (STATS_EMAIL_OPENS, STATS_EMAIL_CLICKS)

Revision ID: 5aaf93adf41e
Revises: cd3b205b2f98
Created: 2026-11-27 21:20:00
"""

import sqlalchemy as sa
from alembic import op

from broadsheet.extensions import UTCDateTime

revision = "5aaf93adf41e"
down_revision = "cd3b205b2f98"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "newsletter_opens",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["newsletter_deliveries.id"],
            name=op.f("fk_newsletter_opens_delivery_id_newsletter_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_newsletter_opens")),
    )
    op.create_table(
        "newsletter_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("link_key", sa.String(length=32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("first_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["newsletter_deliveries.id"],
            name=op.f("fk_newsletter_clicks_delivery_id_newsletter_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_newsletter_clicks")),
        sa.UniqueConstraint(
            "delivery_id", "link_key", name=op.f("uq_newsletter_clicks_delivery_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("newsletter_clicks")
    op.drop_table("newsletter_opens")
