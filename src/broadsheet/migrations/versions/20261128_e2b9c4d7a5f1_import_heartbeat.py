"""porting: an import job's heartbeat, for the sweeper that resumes a stalled one

Revision ID: e2b9c4d7a5f1
Revises: d4f8a2c6e1b3
Created: 2026-11-28 04:00:00

``import_jobs.heartbeat_at``: when a queued or running job last moved (queued,
a batch committed, or sent again by the sweeper).  Nullable: the release still
serving while this runs never writes it, and a job without one counts from its
creation.
"""

import sqlalchemy as sa
from alembic import op

from broadsheet.extensions import UTCDateTime

revision = "e2b9c4d7a5f1"
down_revision = "d4f8a2c6e1b3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.add_column(sa.Column("heartbeat_at", UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_jobs") as batch_op:
        batch_op.drop_column("heartbeat_at")
