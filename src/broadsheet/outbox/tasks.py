"""The one way an email task runs, and the outbox's sweeper on the beat."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Task, shared_task
from flask import current_app

from broadsheet.extensions import db, mail, utcnow
from broadsheet.outbox import services
from broadsheet.outbox.services import Composer

log = logging.getLogger(__name__)
SWEEP_GRACE = timedelta(seconds=60)  # a message this late in the queue counts as lost


def run_email_task(task: Task[Any, Any], email_ids: list[int], compose: Composer) -> int:
    """The body of every email task: send what is due, queue each retry for when it is due.

    Returns how many messages went.  Email tasks are declared with
    ``queue.WAIT_FOR_DATABASE``: while the database is away they try again every few
    seconds; after that the rows, still pending, are the sweeper's.
    """
    outcome = services.deliver(
        db.session,
        email_ids,
        compose=compose,
        connection=mail.get_connection(fail_silently=False),
        delays=current_app.config["EMAIL_RETRY_DELAYS"],
        clock=utcnow,
    )
    for when, ids in outcome.retry.items():
        try:
            task.apply_async((ids,), countdown=max(0.0, (when - utcnow()).total_seconds()))
        except Exception:  # the broker is down: the rows are pending, and the sweeper has them
            log.warning("could not queue the retry of emails %s; the sweeper will", ids)
    return outcome.sent


@shared_task(name="broadsheet.sweep_outbox")
def sweep_outbox() -> int:
    """On the beat: queue again the emails whose message was lost; returns how many."""
    found = services.sweep(db.session, now=utcnow(), grace=SWEEP_GRACE)
    db.session.commit()
    count = sum(len(ids) for ids in found.values())
    if count:
        log.info("outbox sweep: queued %d email(s) again", count)
    return count
