"""The import's worker task: runs a confirmed job in slices, committing after each batch."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from flask import current_app

from broadsheet.errors import DomainError
from broadsheet.extensions import db, utcnow
from broadsheet.media.storage import current_store
from broadsheet.porting import images, services
from broadsheet.porting.models import ImportJob, JobStatus
from broadsheet.porting.records import ImportRefused
from broadsheet.queue import WAIT_FOR_DATABASE

log = logging.getLogger(__name__)

# A task holds its message for seconds, not minutes (the worker's time limit is 30 s): after
# this long it commits, queues its own continuation and returns; the next slice skips what
# is done (each batch is recorded with its items) and goes on.
SLICE_SECONDS = 15.0


# A slice stops at its first batch past SLICE_SECONDS; a batch takes a second or two, so the
# worker's usual limits (25 s soft) are raised only as a margin for a slow database.
@shared_task(name=services.RUN_TASK, soft_time_limit=110, time_limit=120, **WAIT_FOR_DATABASE)
def run_import(job_id: int, slice_seconds: float = SLICE_SECONDS) -> str:
    """Run (or resume) import job ``job_id`` for up to ``slice_seconds``.

    Idempotent: a finished job is left alone, and a job whose worker was killed is resumed
    by the broker's redelivery of this message (or by the next slice): every committed batch
    is skipped, the one in flight was rolled back with the process.
    """
    session = db.session
    job = session.get(ImportJob, job_id)
    if job is None or job.status in (JobStatus.DONE, JobStatus.FAILED, JobStatus.WAITING):
        return "nothing to do"
    started = time.monotonic()
    fetching = images.fetching_for(current_app.config, current_store())
    steps = services.run_import(session, job, actor=services.job_actor(session, job), now=utcnow(),
                                fetching=fetching)  # fmt: skip
    try:
        for done in steps:
            session.commit()
            over = time.monotonic() - started > slice_seconds
            if done and over and job.status is JobStatus.RUNNING:
                steps.close()
                services.continue_import(session, job_id)
                session.commit()
                return "continues"
    except (ImportRefused, DomainError) as error:
        session.rollback()
        services.fail_import(session, job_id, str(error), now=utcnow())
        session.commit()
        log.warning("import %d failed: %s", job_id, error)
        return "failed"
    return "done"


@shared_task(name="broadsheet.expire_imports")
def expire_imports() -> int:
    """On the beat: remove the uploads nobody confirmed within a day (``expire_waiting``)."""
    files = services.expire_waiting(db.session, now=utcnow())
    db.session.commit()
    for path in files:
        path.unlink(missing_ok=True)
    if files:
        log.info("removed %d import upload(s) nobody confirmed", len(files))
    return len(files)


@shared_task(name="broadsheet.sweep_imports")
def sweep_imports() -> int:
    """On the beat: send again the imports whose worker and message were lost
    (``sweep_stalled``); the run skips every batch already committed."""
    stalled = services.sweep_stalled(db.session, now=utcnow())
    db.session.commit()
    if stalled:
        log.warning("sent %d stalled import(s) again: %s", len(stalled), stalled)
    return len(stalled)
