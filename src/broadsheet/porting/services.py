"""Imports as jobs: upload and dry-run summary, confirmation, the run, its report.

Every door calls these: the admin (upload → summary → confirm → a worker
runs it), and ``broadsheet import`` (summary, then the run in the same
process).  A file is read whole once before anything is written (the
summary), so a file that is not an export, is truncated, unsafe or too
big is refused with nothing changed.  The run is a generator: it yields
after each batch, where the door commits (services never commit), so the
job's progress is visible and a killed run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
from collections.abc import Generator, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import OPERATOR, Action, Actor, require
from broadsheet.addresses import normalise_email
from broadsheet.content.models import Post
from broadsheet.errors import Invalid, NotFound
from broadsheet.extensions import DbSession, utcnow
from broadsheet.porting.archive import ArchiveReader
from broadsheet.porting.ghost import GhostReader
from broadsheet.porting.images import Fetching
from broadsheet.porting.models import ImportFormat, ImportItem, ImportJob, JobStatus
from broadsheet.porting.records import (
    AuthorRecord,
    ImportRefused,
    PostRecord,
    Record,
    Skipped,
    Source,
    SubscriberRecord,
    TagRecord,
)
from broadsheet.porting.subscribers import SubscriberCsvReader, csv_format
from broadsheet.porting.wordpress import WxrReader
from broadsheet.porting.writer import BATCH, Report, Writer
from broadsheet.queue import enqueue_after_commit
from broadsheet.slugs import make_slug

MAX_IMPORT_BYTES = 512 * 1024 * 1024
RUN_TASK = "broadsheet.run_import"
SUFFIXES = {ImportFormat.WORDPRESS: ".xml", ImportFormat.GHOST: ".json",
            ImportFormat.GHOST_MEMBERS: ".csv", ImportFormat.SUBSTACK: ".csv",
            ImportFormat.ARCHIVE: ".zip"}  # fmt: skip


def detect_format(path: Path) -> ImportFormat:
    """What kind of export a file is, from its first bytes; raises ImportRefused."""
    with path.open("rb") as file:
        head = file.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK\x03\x04"):
        return ImportFormat.ARCHIVE
    if text.startswith(b"<"):
        return ImportFormat.WORDPRESS
    if text.startswith((b"{", b"[")):
        return ImportFormat.GHOST
    first_line = text.split(b"\n", 1)[0].decode("utf-8", "replace")
    kind = csv_format([cell.strip('" ') for cell in first_line.split(",")])
    if kind is not None:
        return ImportFormat(kind)
    raise ImportRefused(
        "this file is not a WordPress export (XML), a Ghost export (JSON), a Ghost members or "
        "Substack subscriber list (CSV), or a Broadsheet archive (zip)"
    )


def read(path: Path, kind: ImportFormat) -> Iterable[Record]:
    """The records of the file, as a stream; raises ImportRefused as soon as it cannot."""
    if kind is ImportFormat.WORDPRESS:
        return WxrReader(path)
    if kind is ImportFormat.GHOST:
        return GhostReader(path)
    if kind is ImportFormat.ARCHIVE:
        return ArchiveReader(path)
    return SubscriberCsvReader(path, kind.value)


def summarise(session: DbSession, records: Iterable[Record]) -> dict[str, Any]:
    """What importing ``records`` would do: counts, slug clashes and how they are resolved,
    authors matched by email, what is skipped.  Reads the whole file; writes nothing."""
    counts: dict[str, int] = {}
    report = Report()
    source = "import"
    slugs: list[tuple[str, str]] = []
    seen_slugs: set[str] = set()
    emails: list[str] = []
    items = 0

    def check_slugs() -> None:
        keys = [key for key, _slug in slugs]
        done = set(
            session.scalars(
                select(ImportItem.source_id).where(
                    ImportItem.source == source,
                    ImportItem.kind == "post",
                    ImportItem.source_id.in_(keys),
                )
            )
        )
        counts["already imported"] = counts.get("already imported", 0) + len(done)
        wanted = {slug for key, slug in slugs if key not in done}
        taken = set(session.scalars(select(Post.slug).where(Post.slug.in_(wanted))))
        for key, slug in slugs:
            if key in done:
                continue
            if slug in taken or slug in seen_slugs:
                report.clash("post", slug, f"{slug}-2 (or the next free number)")
            seen_slugs.add(slug)
        slugs.clear()

    for record in records:
        items += 1
        if isinstance(record, Source):
            source = record.name
        elif isinstance(record, PostRecord):
            counts[record.kind + "s"] = counts.get(record.kind + "s", 0) + 1
            counts[f"{record.kind}s {record.status}"] = (
                counts.get(f"{record.kind}s {record.status}", 0) + 1
            )
            slugs.append((record.key, make_slug(record.slug or record.title, max_length=190)))
            if record.canonical_url:
                report.canonical_skipped += 1
            if len(slugs) >= BATCH:
                check_slugs()
        elif isinstance(record, TagRecord):
            counts["tags"] = counts.get("tags", 0) + 1
        elif isinstance(record, AuthorRecord):
            counts["authors"] = counts.get("authors", 0) + 1
            emails.append(normalise_email(record.email))
        elif isinstance(record, SubscriberRecord):
            counts[f"subscribers {record.status}"] = (
                counts.get(f"subscribers {record.status}", 0) + 1
            )
        elif isinstance(record, Skipped):
            report.skip(record.kind, record.key, record.reason)
    check_slugs()
    if not counts.get("already imported"):
        counts.pop("already imported", None)
    matched = set(session.scalars(select(User.email).where(User.email.in_(emails))))
    done_before = session.scalar(select(ImportItem.id).where(ImportItem.source == source).limit(1))
    return {
        "source": source,
        "items": items,
        "counts": counts,
        "authors_matched": sorted(matched),
        "clashes": report.clashes,
        "clash_count": report.clash_count,
        "skipped": report.skipped,
        "skipped_count": report.skipped_count,
        "canonical_skipped": report.canonical_skipped,
        "imported_before": done_before is not None,
    }


def _save_upload(upload: IO[bytes], folder: Path, max_bytes: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"import-{secrets.token_hex(8)}"
    written = 0
    with path.open("wb") as out:
        while chunk := upload.read(1 << 20):
            written += len(chunk)
            if written > max_bytes:
                out.close()
                path.unlink()
                raise Invalid({"file": f"the file is larger than {max_bytes // (1024 * 1024)} MB"})
            out.write(chunk)
    if written == 0:
        path.unlink()
        raise Invalid({"file": "the file is empty"})
    return path


def start_import(
    session: DbSession,
    *,
    actor: Actor,
    now: datetime,
    upload: IO[bytes],
    filename: str,
    folder: Path,
    max_bytes: int = MAX_IMPORT_BYTES,
    old_site: str | None = None,
) -> ImportJob:
    """Keep an uploaded export under ``folder``, read it whole and return a job holding its
    dry-run summary, waiting for confirmation; flushes.  Raises Forbidden, or Invalid (with
    the file removed and nothing written) when the file cannot be imported.  ``old_site``,
    the old site's address, is where images named by a path alone are fetched from."""
    require(actor, Action.MANAGE_SETTINGS)
    old_site = check_old_site(old_site)
    path = _save_upload(upload, folder, max_bytes)
    try:
        kind = detect_format(path)
        summary = summarise(session, read(path, kind))
        if old_site:
            summary["old_site"] = old_site
    except ImportRefused as error:
        path.unlink(missing_ok=True)
        raise Invalid({"file": str(error)}, f"The file cannot be imported: {error}.") from None
    final = path.with_suffix(SUFFIXES[kind])
    shutil.move(path, final)
    job = ImportJob(
        format=kind,
        filename=Path(filename).name[:255] or final.name,
        path=str(final),
        status=JobStatus.WAITING,
        total=summary["items"],
        done=0,
        actor_id=getattr(actor, "id", None),
        created_at=now,
        summary=summary,
    )
    session.add(job)
    session.flush()
    return job


def check_old_site(address: str | None) -> str | None:
    """The old site's address, checked (an absolute http or https URL), or None; Invalid."""
    address = (address or "").strip()
    if not address:
        return None
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(address) > 300:
        raise Invalid({"old_site": "give the old site's address as https://… (or leave it empty)"})
    return address.rstrip("/")


def find_job(session: DbSession, job_id: int, *, actor: Actor) -> ImportJob:
    require(actor, Action.MANAGE_SETTINGS)
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"there is no import {job_id}")
    return job


def recent_jobs(session: DbSession, *, actor: Actor, limit: int = 20) -> list[ImportJob]:
    require(actor, Action.MANAGE_SETTINGS)
    return list(session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def confirm_import(session: DbSession, job: ImportJob, *, actor: Actor, now: datetime) -> ImportJob:
    """Queue a waiting job for a worker (after the commit); confirming twice queues it once."""
    require(actor, Action.MANAGE_SETTINGS)
    if job.status is not JobStatus.WAITING:
        return job
    job.status, job.heartbeat_at = JobStatus.QUEUED, now
    session.flush()
    enqueue_after_commit(session, RUN_TASK, job.id)
    return job


def run_import(
    session: DbSession,
    job: ImportJob,
    *,
    actor: Actor,
    now: datetime,
    fetching: Fetching | None = None,
) -> Generator[int, None, None]:
    """Import the job's file, yielding the records done after each batch: the caller commits
    there, so progress shows and a crash loses at most one uncommitted batch.  Idempotent: a
    finished job is a no-op; a job run again (after a killed worker) skips every item the
    earlier runs committed.  A file that fails half-way marks the job failed with the reason.
    With ``fetching``, the posts' images are downloaded into the media library (see
    ``porting.images``); without, they keep their addresses and the report lists them.
    """
    require(actor, Action.MANAGE_SETTINGS)
    if job.status is JobStatus.DONE:
        return
    job.status, job.error, job.heartbeat_at = JobStatus.RUNNING, None, utcnow()
    job.started_at = job.started_at or now
    session.flush()
    yield 0
    if fetching is not None:
        fetching = dataclasses.replace(fetching, old_site=(job.summary or {}).get("old_site"))
    writer = Writer(session, actor=actor, now=now, job_id=job.id, fetching=fetching)
    for done in writer.write(read(Path(job.path), job.format)):
        job.done = max(job.done, min(done, job.total or done))  # a resumed run recounts
        job.heartbeat_at = utcnow()
        session.flush()
        yield done
    job.status, job.finished_at, job.done = JobStatus.DONE, now, job.total
    job.report = writer.report.as_dict()
    session.flush()
    yield job.done
    Path(job.path).unlink(missing_ok=True)


def continue_import(session: DbSession, job_id: int) -> None:
    """Queue the next slice of a running job (after the commit)."""
    enqueue_after_commit(session, RUN_TASK, job_id)


def fail_import(session: DbSession, job_id: int, reason: str, *, now: datetime) -> None:
    """Mark a job failed (after the door rolled the batch in flight back); flushes."""
    job = session.get(ImportJob, job_id)
    if job is not None and job.status is not JobStatus.DONE:
        job.status, job.error, job.finished_at = JobStatus.FAILED, reason[:2000], now
        session.flush()


# A queued or running job that has not moved for this long lost its worker and its message
# (the embedded broker redelivers nothing) and is sent again.  A batch commits in seconds; a
# batch downloading many slow images takes longer, so the margin is wide.  A second run of a
# job still running is harmless: the batch both write is committed once (its items are
# recorded under a unique key) and the other run's attempt is rolled back.
STALLED = timedelta(minutes=10)


def sweep_stalled(session: DbSession, *, now: datetime) -> list[int]:
    """Send again every queued or running job that has not moved for STALLED; returns their
    ids.  Each is marked as moved now, so it is sent once per STALLED at most.  Flushes."""
    moved = func.coalesce(ImportJob.heartbeat_at, ImportJob.created_at)
    stalled = session.scalars(
        select(ImportJob)
        .where(ImportJob.status.in_((JobStatus.QUEUED, JobStatus.RUNNING)), moved < now - STALLED)
        .order_by(ImportJob.id)
    ).all()
    for job in stalled:
        job.heartbeat_at = now
        enqueue_after_commit(session, RUN_TASK, job.id)
    session.flush()
    return [job.id for job in stalled]


WAITING_DAYS = 1  # an upload nobody confirmed is removed after this long
NOT_CONFIRMED = (
    "Not confirmed within a day: the uploaded file was removed. Upload it again to import it."
)


def expire_waiting(session: DbSession, *, now: datetime) -> list[Path]:
    """Mark failed, with the reason, the jobs whose upload nobody confirmed for WAITING_DAYS,
    and return their files, for the caller to remove once that is committed (an export can be
    hundreds of megabytes).  A confirm that comes later finds the job no longer waiting and
    queues nothing.  Flushes."""
    stale = session.scalars(
        select(ImportJob).where(
            ImportJob.status == JobStatus.WAITING,
            ImportJob.created_at < now - timedelta(days=WAITING_DAYS),
        )
    ).all()
    for job in stale:
        job.status, job.error, job.finished_at = JobStatus.FAILED, NOT_CONFIRMED, now
    session.flush()
    return [Path(job.path) for job in stale]


def job_actor(session: DbSession, job: ImportJob) -> Actor:
    """Who a worker acts for: the staff member who started the import, or the operator for
    an import started at the command line.  Their rights are checked again as it runs."""
    user = session.get(User, job.actor_id) if job.actor_id is not None else None
    return user if user is not None else OPERATOR


SHOWN = 10  # lines of each list the text shows; the report file has them all (up to 200)


def _listed(items: list[str], total: int) -> list[str]:
    more = [f"  … and {total - SHOWN} more"] if total > SHOWN else []
    return [f"  {item}" for item in items[:SHOWN]] + more


def _skipped(found: dict[str, Any]) -> list[str]:
    return [f"{s['kind']} {s['key']}: {s['reason']}" for s in found.get("skipped", [])]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "nothing"


def describe_summary(kind: ImportFormat, summary: dict[str, Any]) -> str:
    """The dry-run summary as plain text (the command line and the report file)."""
    lines = [f"A {kind.value} export: {_counts(summary.get('counts', {}))}."]
    if summary.get("imported_before"):
        lines.append("This source was imported before: what is already here is skipped.")
    if matched := summary.get("authors_matched"):
        lines.append(f"Authors matched to staff by email: {', '.join(matched)}.")
    if summary.get("clash_count"):
        lines.append(f"{summary['clash_count']} slug(s) already taken, renamed:")
        lines += _listed([f"{c['wanted']} → {c['given']}" for c in summary.get("clashes", [])],
                         summary["clash_count"])  # fmt: skip
    if summary.get("canonical_skipped"):
        lines.append(f"{summary['canonical_skipped']} canonical URL(s) skipped: Broadsheet has "
                     "no such field.")  # fmt: skip
    if summary.get("skipped_count"):
        lines.append(f"{summary['skipped_count']} item(s) will be skipped:")
        lines += _listed(_skipped(summary), summary["skipped_count"])
    return "\n".join(lines)


def describe_report(report: dict[str, Any]) -> str:
    """An import's report as plain text."""
    lines = [f"Created: {_counts(report.get('created', {}))}."]
    if report.get("already_imported"):
        lines.append(f"Already imported, skipped: {_counts(report['already_imported'])}.")
    if report.get("matched"):
        lines.append(f"Matched to what was here: {_counts(report['matched'])}.")
    lines.append(f"Redirects from old addresses: {report.get('redirects', 0)}.")
    if report.get("clash_count"):
        lines.append(f"{report['clash_count']} slug(s) were taken and renamed:")
        lines += _listed([f"{c['wanted']} → {c['given']}" for c in report.get("clashes", [])],
                         report["clash_count"])  # fmt: skip
    if report.get("images_fetched"):
        lines.append(f"Images downloaded into the media library: {report['images_fetched']}.")
    if report.get("images_kept_count"):
        lines.append(f"{report['images_kept_count']} image(s) keep their original URL (not "
                     "downloaded):")  # fmt: skip
        kept = [k if isinstance(k, str) else f"{k['url']}: {k['reason']}"
                for k in report.get("images_kept", [])]  # fmt: skip
        lines += _listed(kept, report["images_kept_count"])
    if report.get("canonical_skipped"):
        lines.append(f"{report['canonical_skipped']} canonical URL(s) skipped (no such field).")
    if report.get("names_skipped"):
        lines.append(f"{report['names_skipped']} subscriber name(s) not kept (no such field).")
    if report.get("skipped_count"):
        lines.append(f"Skipped {report['skipped_count']} item(s):")
        lines += _listed(_skipped(report), report["skipped_count"])
    return "\n".join(lines)
