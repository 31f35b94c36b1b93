"""An import job (its file, progress and report) and the items it has brought in.

``ImportItem`` is what makes an import idempotent and resumable: every post,
tag, author or subscriber written by an import is recorded under its source
and its id there (a WordPress GUID, a Ghost id, an email) in the same
transaction as the row itself, so running the same file again, or resuming
after a killed worker, skips what is already done and writes nothing twice.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from broadsheet.extensions import Model, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class ImportFormat(enum.StrEnum):
    WORDPRESS = "wordpress"  # WXR (Tools → Export)
    GHOST = "ghost"  # Ghost's JSON export
    GHOST_MEMBERS = "ghost-members"  # Ghost's members CSV
    SUBSTACK = "substack"  # Substack's subscriber CSV
    ARCHIVE = "archive"  # Broadsheet's own export (zip)


class JobStatus(enum.StrEnum):
    WAITING = "waiting"  # uploaded, dry-run shown, not confirmed yet
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportJob(Model):
    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[ImportFormat] = mapped_column(_enum(ImportFormat))
    filename: Mapped[str] = mapped_column(String(255))
    # Where the uploaded file waits, under the instance folder.
    path: Mapped[str] = mapped_column(String(1000))
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.WAITING)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # When a queued or running job last moved: the sweeper sends a job that stops moving again.
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # The dry-run summary, then the report: counts, clashes, skipped rows, kept image URLs.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))

    def __repr__(self) -> str:
        return f"<ImportJob {self.id} {self.format} {self.status}>"


class ImportItem(Model):
    __tablename__ = "import_items"
    __table_args__ = (Index("ix_import_items_key", "source", "kind", "source_id", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # The site it came from ("wordpress:https://old.example.com", "ghost:…", "substack").
    source: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))  # post, tag, author, subscriber
    source_id: Mapped[str] = mapped_column(String(300))
    target_id: Mapped[int | None]
    job_id: Mapped[int | None] = mapped_column(ForeignKey("import_jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
