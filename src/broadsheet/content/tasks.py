"""Periodic content work, run by the worker on the beat's schedule."""

from __future__ import annotations

import logging

from celery import shared_task

from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import sending

log = logging.getLogger(__name__)


@shared_task(name="broadsheet.publish_due_posts")
def publish_due_posts() -> int:
    """Publish the scheduled posts whose time has come; safe to run twice at once.

    Posts scheduled with email have their recipients frozen in the same
    transaction, and go out after it commits.
    """
    published = sending.publish_due_posts(db.session, now=utcnow())
    db.session.commit()
    if published:
        log.info("published %d scheduled post(s): %s", len(published), published)
    return len(published)
