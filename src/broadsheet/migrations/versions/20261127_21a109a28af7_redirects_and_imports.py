"""redirects; import jobs and the items they brought in

Revision ID: 21a109a28af7
Revises: a353fcb02619
Created: 2026-11-27 20:10:00
"""

import sqlalchemy as sa
from alembic import op

from broadsheet.extensions import UTCDateTime

revision = "21a109a28af7"
down_revision = "a353fcb02619"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redirects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("old_path", sa.String(length=500), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(length=500), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "staff",
                "slug-change",
                "import",
                name="redirectsource",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name=op.f("fk_redirects_post_id_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redirects")),
        sa.UniqueConstraint("old_path", name=op.f("uq_redirects_old_path")),
    )
    with op.batch_alter_table("redirects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_redirects_post_id"), ["post_id"], unique=False)
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "format",
            sa.Enum(
                "wordpress",
                "ghost",
                "ghost-members",
                "substack",
                "archive",
                name="importformat",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "queued",
                "running",
                "done",
                "failed",
                name="jobstatus",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("dry_run", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_import_jobs_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_table(
        "import_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_id", sa.String(length=300), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["import_jobs.id"],
            name=op.f("fk_import_items_job_id_import_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_items")),
    )
    with op.batch_alter_table("import_items", schema=None) as batch_op:
        batch_op.create_index("ix_import_items_key", ["source", "kind", "source_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("import_items", schema=None) as batch_op:
        batch_op.drop_index("ix_import_items_key")
    op.drop_table("import_items")
    op.drop_table("import_jobs")
    with op.batch_alter_table("redirects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_redirects_post_id"))
    op.drop_table("redirects")
