"""The media's background work: processing uploads, the sweeper, the weekly clean-up."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

from broadsheet import queue
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.extensions import db, utcnow
from broadsheet.media import services, work
from broadsheet.media.storage import current_store

log = logging.getLogger(__name__)


@shared_task(name="broadsheet.process_image", **queue.WAIT_FOR_DATABASE)
def process_image(image_id: int) -> bool:
    """Make an upload's variants; idempotent.  The attempt is committed first, so a worker
    that dies mid-way leaves a counted attempt that the sweeper (or a redelivery) resumes."""
    source = work.claim(db.session, image_id, now=utcnow())
    db.session.commit()
    if source is None:
        return False
    done = work.process(
        db.session,
        image_id,
        source,
        store=current_store(),
        limits=services.Limits.from_config(current_app.config),
        now=utcnow(),
    )
    db.session.commit()
    return done


@shared_task(name="broadsheet.sweep_media")
def sweep_media() -> int:
    """On the beat: queue again the uploads whose processing stalled; returns how many."""
    stalled = work.sweep(db.session, now=utcnow())
    db.session.commit()
    if stalled:
        log.info("media sweep: queued %d image(s) again: %s", len(stalled), stalled)
    return len(stalled)


@shared_task(name="broadsheet.collect_media_garbage")
def collect_media_garbage() -> int:
    """Weekly: remove uploads that no post uses, a day after they came."""
    removed = services.collect_garbage(
        db.session, actor=OPERATOR, now=utcnow(), store=current_store()
    )
    db.session.commit()
    if removed:
        log.info("removed %d unused image(s): %s", len(removed), [i.name for i in removed])
    return len(removed)
