"""Periodic content work, run by the worker on the beat's schedule."""

from __future__ import annotations

import logging

from celery import shared_task

from broadsheet.content import services
from broadsheet.extensions import db, utcnow

log = logging.getLogger(__name__)


@shared_task(name="broadsheet.publish_due_posts")
def publish_due_posts() -> int:
    """Publish the scheduled posts whose time has come; safe to run twice at once."""
    published = services.publish_due_posts(db.session, now=utcnow())
    db.session.commit()
    if published:
        log.info("published %d scheduled post(s): %s", len(published), published)
    return len(published)
