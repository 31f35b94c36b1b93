# Over 400 lines: the in-process half of NEWSLETTER.md's cases, one test per case, one fixture set.
"""Publishing with email: who gets the post, once, and what happens when mail is refused.

Tasks run in-process here (``eager_app``) or are called as the worker would
(``run_batch``); tests/test_newsletter_worker.py does the same with real
worker processes, RabbitMQ and crashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import publish_due_posts as publish_only_due_posts
from broadsheet.extensions import db
from broadsheet.newsletter import delivery, sending, sweeper
from broadsheet.newsletter.mailers import SmtpMailer
from broadsheet.newsletter.models import (
    Delivery,
    DeliveryStatus,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
)
from tests.conftest import NOW
from tests.newsletter import link, make_subscriber, outbox, recipients
from tests.smtp import Recorder


def _draft(make_post: Any, title: str = "Hello, readers", **fields: Any) -> Post:
    return make_post(title, status=PostStatus.DRAFT, **fields)


def _publish(post: Post, *, now: datetime = NOW) -> Send | None:
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=now)
    db.session.commit()
    return send


def _statuses(send_id: int) -> dict[str, DeliveryStatus]:
    rows = db.session.execute(
        select(Delivery.status, Delivery.subscriber_id).where(Delivery.send_id == send_id)
    )
    from broadsheet.newsletter.models import Subscriber

    emails = dict(db.session.execute(select(Subscriber.id, Subscriber.email)).all())
    return {emails[subscriber]: status for status, subscriber in rows}


def test_publishing_with_email_mails_every_confirmed_subscriber_who_wants_the_post_once(
    eager_app: Flask, make_post: Any
) -> None:
    make_subscriber("everything@example.com")
    make_subscriber("python@example.com", tags=["Python"])
    make_subscriber("cooking@example.com", tags=["Cooking"])
    make_subscriber("pending@example.com", status=SubscriberStatus.PENDING)
    make_subscriber("gone@example.com", status=SubscriberStatus.UNSUBSCRIBED)
    post = _draft(make_post, tags=["Python", "Flask"])

    send = _publish(post)
    assert send is not None
    assert recipients(eager_app) == ["everything@example.com", "python@example.com"]
    db.session.expire_all()
    progress = sending.send_progress(db.session, send.id, actor=OPERATOR)
    assert (progress.recipients, progress.sent, progress.failed, progress.remaining) == (2, 2, 0, 0)
    assert progress.status is SendStatus.DONE


def test_each_email_is_the_post_with_the_subscribers_own_one_click_unsubscribe(
    eager_app: Flask, make_post: Any
) -> None:
    subscriber = make_subscriber("reader@example.com")
    _publish(_draft(make_post, "Tabs or spaces", markdown="Spaces, *obviously*."))
    [message] = outbox(eager_app)
    headers = message.message()
    assert message.subject == "Tabs or spaces"
    assert headers["Message-ID"] == f"<post-1.sub-{subscriber.id}@blog.example.com>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe, mailto = headers["List-Unsubscribe"].split(", ")
    assert unsubscribe.startswith("<https://blog.example.com/unsubscribe/")
    assert mailto.startswith("<mailto:")
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert "<em>obviously</em>" in html
    assert "https://blog.example.com/tabs-or-spaces/" in message.body

    one_click = eager_app.test_client(use_cookies=False).post(
        unsubscribe.strip("<>").removeprefix("https://blog.example.com"),
        data={"List-Unsubscribe": "One-Click"},
    )
    assert one_click.status_code == 200
    assert link(message, "/unsubscribe/") == unsubscribe.strip("<>").removeprefix(
        "https://blog.example.com"
    )
    from broadsheet.newsletter.services import find_subscriber

    found = find_subscriber(db.session, "reader@example.com")
    assert found is not None
    assert found.status is SubscriberStatus.UNSUBSCRIBED


def test_publishing_twice_or_without_email_sends_nothing_more(
    eager_app: Flask, make_post: Any
) -> None:
    make_subscriber("reader@example.com")
    post = _draft(make_post)
    assert _publish(post) is not None
    assert _publish(post) is None
    assert sending.freeze_recipients(db.session, post.id, now=NOW) is None
    db.session.commit()
    assert recipients(eager_app) == ["reader@example.com"]

    from broadsheet.content.services import publish_post

    quiet = _draft(make_post, "Publish only")
    publish_post(db.session, quiet, actor=OPERATOR, now=NOW)
    db.session.commit()
    assert sending.send_for_post(db.session, quiet.id) is None
    assert recipients(eager_app) == ["reader@example.com"]


def test_a_publish_that_rolls_back_sends_nothing(eager_app: Flask, make_post: Any) -> None:
    make_subscriber("reader@example.com")
    post = _draft(make_post)
    sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Send)) == 0
    assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert outbox(eager_app) == []


def test_recipients_are_frozen_when_the_post_is_published(eager_app: Flask, make_post: Any) -> None:
    make_subscriber("early@example.com")
    make_subscriber("late@example.com", status=SubscriberStatus.CONFIRMED,
                    confirmed_at=NOW + timedelta(minutes=1))  # fmt: skip
    _publish(_draft(make_post))
    assert recipients(eager_app) == ["early@example.com"]


def test_a_post_scheduled_with_email_is_mailed_once_when_the_scheduler_publishes_it(
    eager_app: Flask, make_post: Any
) -> None:
    make_subscriber("reader@example.com")
    later = NOW + timedelta(hours=1)
    with_email = _draft(make_post, "With email")
    without = _draft(make_post, "Without email")
    sending.schedule_with_email(db.session, with_email, actor=OPERATOR, at=later, now=NOW,
                                email=True)  # fmt: skip
    sending.schedule_with_email(db.session, without, actor=OPERATOR, at=later, now=NOW,
                                email=False)  # fmt: skip
    db.session.commit()
    assert sending.publish_due_posts(db.session, now=NOW) == []
    published = sending.publish_due_posts(db.session, now=later)
    db.session.commit()
    assert sorted(published) == sorted([with_email.id, without.id])
    assert sending.publish_due_posts(db.session, now=later) == []  # a second, late run
    db.session.commit()
    assert [m.subject for m in outbox(eager_app)] == ["With email"]
    assert publish_only_due_posts(db.session, now=later) == []


def test_staff_cancel_a_send_that_has_not_finished(app: Flask, make_post: Any) -> None:
    for n in range(3):
        make_subscriber(f"r{n}@example.com")
    send = _publish(_draft(make_post))  # no worker runs here: the rows stay queued
    assert send is not None
    sending.cancel_send(db.session, send.id, actor=OPERATOR, now=NOW)
    db.session.commit()
    progress = sending.send_progress(db.session, send.id, actor=OPERATOR)
    assert (progress.status, progress.skipped, progress.remaining) == (SendStatus.CANCELLED, 3, 0)
    result = delivery.run_batch(
        db.session, _unused_mailer(), app.config, send_id=send.id,
        first_id=0, last_id=10**9, owner="t", clock=lambda: NOW,
    )  # fmt: skip
    assert result.sent == 0


def _list_all(send_id: int) -> int:
    """Run the listing steps a worker would, one after another; how many steps ran."""
    steps = 0
    while True:
        step = sending.list_step(db.session, send_id, now=NOW)
        db.session.commit()
        steps += 1
        if not step.more:
            return steps


@pytest.fixture
def small_steps(app: Flask) -> Iterator[None]:
    app.config["NEWSLETTER_LIST_CHUNK"] = 3
    yield
    app.config.pop("NEWSLETTER_LIST_CHUNK")


def test_a_long_list_is_frozen_at_publish_and_written_in_steps(
    app: Flask, make_post: Any, small_steps: None
) -> None:
    wanted = [make_subscriber(f"r{n}@example.com").id for n in range(8)]
    make_subscriber("cooking@example.com", tags=["Cooking"])
    make_subscriber("pending@example.com", status=SubscriberStatus.PENDING)
    send = _publish(_draft(make_post))
    assert send is not None
    assert send.recipients == 8  # counted at publish time
    assert len(_statuses(send.id)) == 3  # the first step, written by the publish itself
    progress = sending.send_progress(db.session, send.id, actor=OPERATOR)
    assert (progress.remaining, progress.percent) == (8, 0)

    # Between the publish and the later steps: one reader leaves, one confirms, one joins.
    later = NOW + timedelta(minutes=1)
    leaver = db.session.get(Subscriber, wanted[-1])
    assert leaver is not None
    leaver.status, leaver.unsubscribed_at = SubscriberStatus.UNSUBSCRIBED, later
    pending = db.session.scalar(select(Subscriber).where(Subscriber.email == "pending@example.com"))
    assert pending is not None
    pending.status, pending.confirmed_at = SubscriberStatus.CONFIRMED, later
    make_subscriber("newcomer@example.com", confirmed_at=later)
    db.session.commit()

    assert _list_all(send.id) == 2  # three more rows, then the last two
    statuses = _statuses(send.id)
    assert sorted(statuses) == sorted(f"r{n}@example.com" for n in range(8))
    assert set(statuses.values()) == {DeliveryStatus.QUEUED}
    db.session.refresh(send)
    assert (send.recipients, send.listed_through) == (8, None)
    assert _list_all(send.id) == 1  # listing again writes nothing
    assert len(_statuses(send.id)) == 8


def test_a_send_is_done_only_once_every_recipient_is_written_and_mailed(
    eager_app: Flask, make_post: Any
) -> None:
    eager_app.config["NEWSLETTER_LIST_CHUNK"] = 4
    try:
        for n in range(10):
            make_subscriber(f"r{n}@example.com")
        send = _publish(_draft(make_post))  # each step queues the next and its batches
    finally:
        eager_app.config.pop("NEWSLETTER_LIST_CHUNK")
    assert send is not None
    assert recipients(eager_app) == [f"r{n}@example.com" for n in range(10)]
    db.session.expire_all()
    progress = sending.send_progress(db.session, send.id, actor=OPERATOR)
    assert (progress.status, progress.recipients, progress.sent) == (SendStatus.DONE, 10, 10)


def test_cancelling_a_send_still_being_listed_writes_and_mails_nobody_more(
    app: Flask, make_post: Any, small_steps: None
) -> None:
    for n in range(7):
        make_subscriber(f"r{n}@example.com")
    send = _publish(_draft(make_post))
    assert send is not None
    sending.cancel_send(db.session, send.id, actor=OPERATOR, now=NOW)
    db.session.commit()
    assert _list_all(send.id) == 1
    assert set(_statuses(send.id).values()) == {DeliveryStatus.SKIPPED}
    assert len(_statuses(send.id)) == 3
    progress = sending.send_progress(db.session, send.id, actor=OPERATOR)
    assert (progress.status, progress.remaining) == (SendStatus.CANCELLED, 0)


class _unused_mailer:
    def send(self, message: Any) -> None:
        raise AssertionError("nothing should be sent")

    def close(self) -> None:
        pass


@pytest.fixture
def smtp_app(app: Flask, smtp_server: Recorder) -> Iterator[Flask]:
    """``app`` with a short retry schedule; batches are run by the test, over real SMTP."""
    saved = dict(app.config)
    app.config.update(NEWSLETTER_RETRY_DELAYS=(60.0, 600.0), NEWSLETTER_MAX_ERROR_STREAK=4)
    yield app
    app.config.clear()
    app.config.update(saved)


def _run(app: Flask, server: Recorder, send: Send, at: datetime) -> delivery.BatchResult:
    return delivery.run_batch(
        db.session, SmtpMailer("127.0.0.1", server.port), app.config, send_id=send.id,
        first_id=0, last_id=10**9, owner="test-task", clock=lambda: at,
    )  # fmt: skip


def test_temporary_refusals_are_retried_later_and_permanent_ones_fail_with_the_reply(
    smtp_app: Flask, smtp_server: Recorder, make_post: Any
) -> None:
    make_subscriber("fine@example.com")
    make_subscriber("busy@example.com")
    make_subscriber("nobody@example.com")
    make_subscriber("flaky@example.com")
    smtp_server.refuse("busy@example.com", "451 4.3.0 Mailbox busy, try later", times=1)
    smtp_server.refuse("nobody@example.com", "550 5.1.1 No such user")
    smtp_server.refuse("flaky@example.com", "421 4.4.5 Too many connections")
    send = _publish(_draft(make_post))
    assert send is not None

    first = _run(smtp_app, smtp_server, send, NOW)
    assert (first.sent, first.retried, first.failed) == (1, 2, 1)
    states = _statuses(send.id)
    assert states["nobody@example.com"] is DeliveryStatus.FAILED
    nobody = db.session.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED))
    assert nobody is not None
    assert nobody.last_error == "550 5.1.1 No such user"
    assert nobody.attempts == 1

    assert _run(smtp_app, smtp_server, send, NOW + timedelta(seconds=30)).sent == 0  # not due
    second = _run(smtp_app, smtp_server, send, NOW + timedelta(seconds=61))
    assert (second.sent, second.retried) == (1, 1)  # busy got through; flaky waits longer
    flaky = db.session.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.QUEUED))
    assert flaky is not None
    assert flaky.next_attempt_at == NOW + timedelta(seconds=61 + 600)  # the delay grows
    third = _run(smtp_app, smtp_server, send, NOW + timedelta(seconds=700))
    assert third.failed == 1
    db.session.expire_all()
    flaky = db.session.get(Delivery, flaky.id)
    assert flaky is not None
    assert flaky.status is DeliveryStatus.FAILED
    assert flaky.last_error == "gave up after 3 tries: 421 4.4.5 Too many connections"
    assert smtp_server.recipients() == {"fine@example.com": 1, "busy@example.com": 1}
    assert sending.send_progress(db.session, send.id, actor=OPERATOR).status is SendStatus.DONE


def test_a_send_that_hits_many_errors_in_a_row_stops_and_says_so(
    smtp_app: Flask, smtp_server: Recorder, make_post: Any
) -> None:
    for n in range(6):
        make_subscriber(f"r{n}@example.com")
        smtp_server.refuse(f"r{n}@example.com", "554 5.7.1 Relay access denied")
    send = _publish(_draft(make_post))
    assert send is not None
    result = _run(smtp_app, smtp_server, send, NOW)
    assert result.failed == 4
    db.session.expire_all()
    progress = sending.send_progress(db.session, send.id, actor=OPERATOR)
    assert progress.status is SendStatus.STOPPED
    assert progress.stop_reason == (
        "stopped after 4 errors in a row; the last: 554 5.7.1 Relay access denied"
    )
    assert progress.remaining == 2


def test_a_subscriber_who_unsubscribes_before_their_batch_goes_is_skipped(
    smtp_app: Flask, smtp_server: Recorder, make_post: Any, client: Any
) -> None:
    make_subscriber("stays@example.com")
    leaving = make_subscriber("leaves@example.com")
    send = _publish(_draft(make_post))
    assert send is not None
    from broadsheet.newsletter.services import unsubscribe
    from broadsheet.newsletter.tokens import Purpose, make_token

    token = make_token(smtp_app.config["SECRET_KEY"], Purpose.UNSUBSCRIBE, leaving.id,
                       "leaves@example.com")  # fmt: skip
    unsubscribe(db.session, secret_key=smtp_app.config["SECRET_KEY"], token=token, now=NOW)
    db.session.commit()
    result = _run(smtp_app, smtp_server, send, NOW)
    assert result.sent == 1
    assert smtp_server.recipients() == {"stays@example.com": 1}
    assert _statuses(send.id)["leaves@example.com"] is DeliveryStatus.SKIPPED


def test_the_sweeper_takes_back_a_claim_whose_worker_died_and_queues_it_again(
    app: Flask, make_post: Any
) -> None:
    for n in range(3):
        make_subscriber(f"r{n}@example.com")
    send = _publish(_draft(make_post))
    assert send is not None
    # A worker claims the batch and dies before sending anything.
    _, _, ids = delivery.claim_batch(db.session, send.id, 0, 10**9, owner="dead", now=NOW)
    db.session.commit()
    assert len(ids) == 3
    lease = app.config["NEWSLETTER_LEASE_SECONDS"]
    early = sweeper.sweep(db.session, app.config, now=NOW + timedelta(seconds=lease - 1))
    assert early.reclaimed == 0
    late = sweeper.sweep(db.session, app.config, now=NOW + timedelta(seconds=lease + 1))
    db.session.commit()
    assert late.reclaimed == 3
    assert late.dispatched == {send.id: 1}
    assert set(_statuses(send.id).values()) == {DeliveryStatus.QUEUED}


def test_the_same_batch_run_twice_sends_each_message_once(
    smtp_app: Flask, smtp_server: Recorder, make_post: Any
) -> None:
    for n in range(4):
        make_subscriber(f"r{n}@example.com")
    send = _publish(_draft(make_post))
    assert send is not None
    assert _run(smtp_app, smtp_server, send, NOW).sent == 4
    assert _run(smtp_app, smtp_server, send, NOW).sent == 0
    assert set(smtp_server.recipients().values()) == {1}
    ids = {r.message_id for r in smtp_server.received}
    assert len(ids) == 4


def test_with_synchronous_commit_off_every_message_is_marked_and_other_work_keeps_it_on(
    smtp_app: Flask, smtp_server: Recorder, make_post: Any
) -> None:
    for n in range(3):
        make_subscriber(f"r{n}@example.com")
    send = _publish(_draft(make_post))
    assert send is not None
    smtp_app.config["NEWSLETTER_SYNCHRONOUS_COMMIT"] = False
    assert _run(smtp_app, smtp_server, send, NOW).sent == 3
    assert set(_statuses(send.id).values()) == {DeliveryStatus.SENT}
    assert set(smtp_server.recipients().values()) == {1}
    if db.engine.dialect.name == "postgresql":  # the batch's connection went back as it came
        db.session.commit()
        pool: Any = db.engine.pool
        with ExitStack() as stack:
            idle = [stack.enter_context(db.engine.connect()) for _ in range(pool.checkedin())]
            settings = {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in idle}
        assert settings == {"on"}


def test_the_beat_sweeps_the_newsletter_and_its_settings_come_from_the_environment(
    tmp_path: Any,
) -> None:
    from broadsheet.config import ConfigError, load_settings

    defaults = load_settings({"SECRET_KEY": "k" * 20}, tmp_path)
    sweep = defaults["CELERY"]["beat_schedule"]["sweep-newsletter"]
    assert sweep == {"task": "broadsheet.sweep_newsletter", "schedule": 30.0}
    assert defaults["NEWSLETTER_RETRY_DELAYS"] == (60.0, 300.0, 1800.0, 7200.0)
    chosen = load_settings(
        {"SECRET_KEY": "k" * 20, "NEWSLETTER_RETRY_DELAYS": "1, 2.5", "NEWSLETTER_BATCH_SIZE": "20",
         "NEWSLETTER_SWEEP_SECONDS": "5"},
        tmp_path,
    )  # fmt: skip
    assert chosen["NEWSLETTER_RETRY_DELAYS"] == (1.0, 2.5)
    assert chosen["NEWSLETTER_BATCH_SIZE"] == 20
    assert chosen["CELERY"]["beat_schedule"]["sweep-newsletter"]["schedule"] == 5.0
    assert defaults["NEWSLETTER_SYNCHRONOUS_COMMIT"] is True
    relaxed = load_settings({"SECRET_KEY": "k" * 20, "NEWSLETTER_SYNCHRONOUS_COMMIT": "false"},
                            tmp_path)  # fmt: skip
    assert relaxed["NEWSLETTER_SYNCHRONOUS_COMMIT"] is False
    with pytest.raises(ConfigError, match="NEWSLETTER_RETRY_DELAYS is 'soon'"):
        load_settings({"SECRET_KEY": "k" * 20, "NEWSLETTER_RETRY_DELAYS": "soon"}, tmp_path)


def test_every_beat_entry_names_a_task_the_worker_knows(app: Flask) -> None:
    celery = app.extensions["celery"]
    schedule = app.config["CELERY"]["beat_schedule"]
    assert schedule["publish-due-posts"]["task"] == "broadsheet.publish_due_posts"
    assert {entry["task"] for entry in schedule.values()} <= set(celery.tasks)
    assert celery.tasks["broadsheet.publish_due_posts"].__module__ == "broadsheet.newsletter.tasks"
