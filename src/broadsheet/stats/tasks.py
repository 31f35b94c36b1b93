"""The stats' background work: the roll-up on the beat."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app

from broadsheet import queue
from broadsheet.extensions import db, utcnow
from broadsheet.stats import rollup

log = logging.getLogger(__name__)


@shared_task(name="broadsheet.roll_up_stats", **queue.WAIT_FOR_DATABASE)
def roll_up_stats() -> int:
    """On the beat: daily rows from minute rows; finished days' salts and old rows deleted."""
    done = rollup.roll_up(
        db.session, now=utcnow(), retention_days=current_app.config["STATS_RETENTION_DAYS"]
    )
    db.session.commit()
    if done.minutes_removed:
        log.info("removed %d minute row(s) of stats past keeping", done.minutes_removed)
    return len(done.days)
