"""The newsletter's Celery tasks: doors that take ids, call the services, commit.

Each does a few seconds of work at most; what was done lives in the
database, so running any of them twice, or at once, is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import Task, shared_task
from flask import current_app
from flask_mailman import EmailMessage

from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import delivery, sending, sweeper
from broadsheet.newsletter.emails import NewsletterComposer, subscriber_note
from broadsheet.newsletter.mailers import mailer_for
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from broadsheet.newsletter.previews import TEST_EMAIL_TASK
from broadsheet.outbox.models import OutboxEmail
from broadsheet.outbox.tasks import run_email_task
from broadsheet.queue import WAIT_FOR_DATABASE, enqueue_after_commit

log = logging.getLogger(__name__)
# What a reader's email waits out: the SMTP server (OSError) or the database (restarting,
# failing over) being away for a moment.  Nothing else records these emails, so a task
# that gave up at once would lose them.


@shared_task(name="broadsheet.send_batch", bind=True, **WAIT_FOR_DATABASE)
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
        self.apply_async((send_id, first_id, last_id), countdown=countdown)  # on its own app
    if result.stopped:
        log.warning("send %s, rows %s-%s: %s", send_id, first_id, last_id, result.stopped)
    log.info(
        "send %s, rows %s-%s: %d sent, %d to retry, %d failed",
        send_id, first_id, last_id, result.sent, result.retried, result.failed,
    )  # fmt: skip
    return {"sent": result.sent, "retried": result.retried, "failed": result.failed}


@shared_task(name="broadsheet.publish_due_posts")
def publish_due_posts() -> int:
    """On the beat: publish the scheduled posts whose time has come; safe to run twice at once.

    Posts scheduled with email have their recipients frozen in the same
    transaction, and go out after it commits.
    """
    published = sending.publish_due_posts(db.session, now=utcnow())
    db.session.commit()
    if published:
        log.info("published %d scheduled post(s): %s", len(published), published)
    return len(published)


@shared_task(name="broadsheet.publish_scheduled_post", bind=True, **WAIT_FOR_DATABASE)
def publish_scheduled_post(self: Task[Any, Any], post_id: int, at: str) -> bool:
    """Timed for a scheduled post's moment ``at`` (ISO 8601): publish it if it is still
    scheduled for then; a reschedule or unschedule since makes this a no-op."""
    moment = datetime.fromisoformat(at)
    now = utcnow()
    if now < moment:  # handed over early (clocks apart): wait out the rest; run eagerly
        if not self.request.is_eager:  # (a demo without a worker), leave it to the sweep
            self.apply_async((post_id, at), eta=moment)
        return False
    published = sending.publish_scheduled_post(db.session, post_id, at=moment, now=now)
    db.session.commit()
    if published:
        log.info("published scheduled post %s (due %s)", post_id, at)
    return published


@shared_task(name="broadsheet.dispatch_send", **WAIT_FOR_DATABASE)
def dispatch_send(send_id: int) -> int:
    """Queue the batches of a send that was just frozen; returns how many."""
    ranges = sweeper.dispatch(
        db.session, send_id, now=utcnow(), batch_size=current_app.config["NEWSLETTER_BATCH_SIZE"]
    )
    db.session.commit()
    return len(ranges)


@shared_task(name="broadsheet.list_recipients", **WAIT_FOR_DATABASE)
def list_recipients(send_id: int) -> int:
    """Write the next step of a send's delivery rows and queue their batches; then the step
    after it, as a task of its own, while more remain.  Returns how many rows it wrote."""
    config = current_app.config
    step = sending.list_step(db.session, send_id, now=utcnow())
    sweeper.dispatch_rows(
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
    report = sweeper.sweep(db.session, current_app.config, now=utcnow())
    db.session.commit()
    if report.reclaimed or report.gave_up or report.dispatched:
        log.info(
            "newsletter sweep: %d claim(s) taken back, %d given up, batches queued: %s",
            report.reclaimed, report.gave_up, report.dispatched,
        )  # fmt: skip
    return {"reclaimed": report.reclaimed, "dispatched": len(report.dispatched)}


def compose_subscriber_note(email: OutboxEmail) -> EmailMessage | None:
    """The confirmation email ("confirm") or the already-subscribed note ("already").

    None (nothing goes) when the subscriber changed state or address meanwhile.
    """
    subscriber = db.session.get(Subscriber, email.ref_id)
    wanted = SubscriberStatus.CONFIRMED if email.kind == "already" else SubscriberStatus.PENDING
    if subscriber is None or subscriber.status is not wanted or subscriber.email != email.recipient:
        return None
    return subscriber_note(
        current_app.config, db.session, subscriber.id, subscriber.email, email.kind
    )


@shared_task(name="broadsheet.send_subscriber_email", bind=True, **WAIT_FOR_DATABASE)
def send_subscriber_email(self: Task[Any, Any], email_ids: list[int]) -> int:
    """Send the subscriber notes recorded in the outbox as ``email_ids``, over one connection.

    Returns how many went.  Sending twice is harmless: each confirmation link works.
    """
    return run_email_task(self, email_ids, compose_subscriber_note)


def compose_test_email(email: OutboxEmail) -> EmailMessage | None:
    """The post's email as a subscriber gets it, to the staff address recorded; None if gone."""
    try:
        composer = NewsletterComposer(db.session, email.ref_id, current_app.config)
    except LookupError:
        return None
    return composer.compose_preview(email.recipient)


@shared_task(name=TEST_EMAIL_TASK, bind=True, **WAIT_FOR_DATABASE)
def send_test_email(self: Task[Any, Any], email_ids: list[int]) -> int:
    """Send the test emails recorded in the outbox as ``email_ids``; returns how many went."""
    return run_email_task(self, email_ids, compose_test_email)
