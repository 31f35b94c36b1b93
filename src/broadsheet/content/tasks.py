"""The content's background work: emptying the trash on the beat."""

from __future__ import annotations

import logging

from celery import shared_task

from broadsheet.content import trash
from broadsheet.extensions import db, utcnow

log = logging.getLogger(__name__)


@shared_task(name="broadsheet.empty_trash")
def empty_trash() -> int:
    """On the beat: remove for good the posts deleted more than ``TRASH_DAYS`` ago."""
    removed = trash.empty_trash(db.session, now=utcnow())
    db.session.commit()
    if removed:
        log.info("removed %d post(s) from the trash for good: %s", len(removed), removed)
    return len(removed)
