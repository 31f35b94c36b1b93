"""The newsletter's Celery tasks: doors that take ids, call the services, commit.

Each does a few seconds of work at most; what was done lives in the
database, so running any of them twice, or at once, is harmless.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from broadsheet.extensions import db, mail, utcnow
from broadsheet.newsletter import delivery, sending
from broadsheet.newsletter.emails import subscriber_note
from broadsheet.newsletter.mailers import mailer_for
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from broadsheet.queue import enqueue_after_commit

log = logging.getLogger(__name__)
# What a reader's email waits out: the SMTP server (OSError) or the database (restarting,
# failing over) being away for a moment.  Nothing else records these emails, so a task
# that gave up at once would lose them.
TRANSIENT = (OSError, OperationalError)


@shared_task(name="broadsheet.send_batch", bind=True)
def send_batch(self: Task[Any, Any], send_id: int, first_id: int, last_id: int) -> dict[str, Any]:
    """Send the due deliveries of ``send_id`` with ids in [first_id, last_id]; see run_batch.

    Rows refused for a temporary reason are queued again, with a countdown,
    for when they are due.
    """
    config = current_app.config
    result = delivery.run_batch(
        db.session,
        mailer_for(config),
        config,
        send_id=send_id,
        first_id=first_id,
        last_id=last_id,
        owner=self.request.id or "local",
        clock=utcnow,
    )
    if result.retry_at and not result.stopped:
        countdown = max(0.0, (min(result.retry_at) - utcnow()).total_seconds())
        send_batch.apply_async((send_id, first_id, last_id), countdown=countdown)
    if result.stopped:
        log.warning("send %s, rows %s-%s: %s", send_id, first_id, last_id, result.stopped)
    log.info(
        "send %s, rows %s-%s: %d sent, %d to retry, %d failed",
        send_id, first_id, last_id, result.sent, result.retried, result.failed,
    )  # fmt: skip
    return {"sent": result.sent, "retried": result.retried, "failed": result.failed}


@shared_task(name="broadsheet.dispatch_send")
def dispatch_send(send_id: int) -> int:
    """Queue the batches of a send that was just frozen; returns how many."""
    ranges = delivery.dispatch(
        db.session, send_id, now=utcnow(), batch_size=current_app.config["NEWSLETTER_BATCH_SIZE"]
    )
    db.session.commit()
    return len(ranges)


@shared_task(name="broadsheet.list_recipients")
def list_recipients(send_id: int) -> int:
    """Write the next step of a send's delivery rows and queue their batches; then the step
    after it, as a task of its own, while more remain.  Returns how many rows it wrote."""
    config = current_app.config
    step = sending.list_step(db.session, send_id, now=utcnow())
    delivery.dispatch_rows(
        db.session, send_id, step.delivery_ids, now=utcnow(),
        batch_size=config["NEWSLETTER_BATCH_SIZE"],
    )  # fmt: skip
    if step.more:
        enqueue_after_commit(db.session, "broadsheet.list_recipients", send_id)
    else:
        delivery.finish_if_done(db.session, send_id, now=utcnow())
    db.session.commit()
    return len(step.delivery_ids)


@shared_task(name="broadsheet.sweep_newsletter")
def sweep_newsletter() -> dict[str, Any]:
    """On the beat: recover claims of dead workers and re-queue work that is due and idle."""
    report = delivery.sweep(db.session, current_app.config, now=utcnow())
    db.session.commit()
    if report.reclaimed or report.gave_up or report.dispatched:
        log.info(
            "newsletter sweep: %d claim(s) taken back, %d given up, batches queued: %s",
            report.reclaimed, report.gave_up, report.dispatched,
        )  # fmt: skip
    return {"reclaimed": report.reclaimed, "dispatched": len(report.dispatched)}


def _notes(subscriber_ids: list[int], kind: str) -> int:
    subscribers = db.session.execute(
        select(Subscriber.id, Subscriber.email, Subscriber.status).where(
            Subscriber.id.in_(subscriber_ids)
        )
    ).all()
    wanted = SubscriberStatus.CONFIRMED if kind == "already" else SubscriberStatus.PENDING
    messages = [
        subscriber_note(current_app.config, db.session, sid, email, kind)
        for sid, email, status in subscribers
        if status is wanted
    ]
    db.session.commit()
    if messages:
        with mail.get_connection(fail_silently=False) as connection:
            connection.send_messages(messages)
    return len(messages)


@shared_task(
    name="broadsheet.send_subscriber_email",
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=5,
)
def send_subscriber_email(subscriber_id: int, kind: str) -> int:
    """The confirmation email ("confirm") or the already-subscribed note ("already").

    Nothing goes when the subscriber changed state meanwhile.  Sending twice
    is harmless: each confirmation link works.
    """
    return _notes([subscriber_id], kind)


@shared_task(name="broadsheet.send_confirmations", autoretry_for=TRANSIENT, retry_backoff=5,
             max_retries=5)  # fmt: skip
def send_confirmations(subscriber_ids: list[int]) -> int:
    """Confirmation emails for imported subscribers still pending, over one connection."""
    return _notes(subscriber_ids, "confirm")
