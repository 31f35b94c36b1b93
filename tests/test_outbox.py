"""Account and subscriber emails go through one outbox: retried on a schedule, failed with a reason.

The task bodies run here as the worker runs them, over a real SMTP server on
loopback that can be told to refuse.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask_mailman.backends.smtp import EmailBackend
from sqlalchemy import select

from broadsheet.accounts import services as accounts
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.tasks import compose_password_reset
from broadsheet.errors import Forbidden
from broadsheet.extensions import db
from broadsheet.newsletter import services as newsletter
from broadsheet.newsletter.models import SubscriberStatus
from broadsheet.newsletter.tasks import compose_subscriber_note
from broadsheet.outbox import services as outbox
from broadsheet.outbox.models import EmailStatus, OutboxEmail
from tests.conftest import NOW
from tests.smtp import Recorder, free_port
from tests.staff import PASSWORD, separate_client, sign_in

DELAYS = (60.0, 600.0)


@pytest.fixture
def editor(make_user: Any) -> User:
    return make_user(Role.EDITOR, email="ed@example.com", password="correct horse battery")


def _ask_for_reset(user: User) -> OutboxEmail:
    accounts.request_password_reset(db.session, user.email, now=NOW)
    db.session.commit()
    row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "password_reset"))
    assert row is not None
    return row


def _deliver(row_id: int, port: int, at: Any, compose: Any = compose_password_reset) -> Any:
    outcome = outbox.deliver(
        db.session, [row_id], compose=compose,
        connection=EmailBackend(host="127.0.0.1", port=port, timeout=5),
        delays=DELAYS, clock=lambda: at,
    )  # fmt: skip
    db.session.expire_all()
    return outcome


def test_a_reset_email_refused_for_now_is_tried_again_when_due_then_sent(
    app: Flask, editor: User, smtp_server: Recorder
) -> None:
    smtp_server.refuse("ed@example.com", "451 4.3.0 Mailbox busy, try later", times=1)
    row = _ask_for_reset(editor)
    first = _deliver(row.id, smtp_server.port, NOW)
    assert first.sent == 0
    assert first.retry == {NOW + timedelta(seconds=60): [row.id]}
    assert (row.status, row.attempts) == (EmailStatus.PENDING, 1)
    assert row.last_error == "451 4.3.0 Mailbox busy, try later"
    assert _deliver(row.id, smtp_server.port, NOW + timedelta(seconds=30)).sent == 0  # not due
    assert _deliver(row.id, smtp_server.port, NOW + timedelta(seconds=60)).sent == 1
    assert (row.status, row.attempts) == (EmailStatus.SENT, 2)
    assert smtp_server.count() == 1
    assert _deliver(row.id, smtp_server.port, NOW + timedelta(hours=1)).sent == 0  # once only


def test_an_email_refused_for_good_is_failed_with_the_servers_reply_and_logged(
    app: Flask, editor: User, smtp_server: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_server.refuse("ed@example.com", "550 5.1.1 No such user")
    row = _ask_for_reset(editor)
    with caplog.at_level(logging.WARNING, logger="broadsheet.outbox"):
        outcome = _deliver(row.id, smtp_server.port, NOW)
    assert (outcome.sent, outcome.failed, outcome.retry) == (0, 1, {})
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 1)
    assert row.last_error == "550 5.1.1 No such user"
    assert f"password_reset email {row.id} failed after 1 attempt(s): 550" in caplog.text
    assert [r.id for r in outbox.failed_emails(db.session)] == [row.id]


def test_temporary_failures_past_the_schedule_leave_the_email_failed(
    app: Flask, editor: User
) -> None:
    row = _ask_for_reset(editor)
    closed = free_port()  # nothing listens: every try fails to connect
    at = NOW
    for delay in DELAYS:
        assert _deliver(row.id, closed, at).retry == {at + timedelta(seconds=delay): [row.id]}
        assert row.status is EmailStatus.PENDING
        at += timedelta(seconds=delay)
    assert _deliver(row.id, closed, at).failed == 1
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 3)
    assert "ConnectionRefusedError" in (row.last_error or "")


def test_an_email_whose_reason_went_away_is_skipped(
    app: Flask, editor: User, smtp_server: Recorder
) -> None:
    row = _ask_for_reset(editor)
    editor.deactivated_at = NOW
    db.session.commit()
    assert _deliver(row.id, smtp_server.port, NOW).skipped == 1
    assert row.status is EmailStatus.SKIPPED
    assert smtp_server.count() == 0


def test_a_claimed_email_is_not_sent_twice_by_a_second_run(
    app: Flask, editor: User, smtp_server: Recorder
) -> None:
    row = _ask_for_reset(editor)
    row.claimed_until = NOW + timedelta(minutes=1)  # another worker holds it
    db.session.commit()
    assert _deliver(row.id, smtp_server.port, NOW).sent == 0
    # That worker died: once its claim runs out, the email goes.
    assert _deliver(row.id, smtp_server.port, NOW + timedelta(minutes=2)).sent == 1
    assert smtp_server.count() == 1


def test_subscriber_confirmations_go_through_the_same_outbox(
    app: Flask, smtp_server: Recorder
) -> None:
    smtp_server.refuse("reader@example.com", "421 4.4.5 Too many connections", times=1)
    subscriber = newsletter.subscribe(db.session, email="Reader@Example.com", now=NOW)
    db.session.commit()
    row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.ref_id == subscriber.id))
    assert row is not None
    assert (row.kind, row.task) == ("confirm", "broadsheet.send_subscriber_email")
    assert _deliver(row.id, smtp_server.port, NOW, compose_subscriber_note).retry
    assert row.last_error == "421 4.4.5 Too many connections"
    later = NOW + timedelta(seconds=60)
    assert _deliver(row.id, smtp_server.port, later, compose_subscriber_note).sent == 1
    [received] = smtp_server.received
    assert received.recipients == ["reader@example.com"]
    assert "Confirm your subscription" in str(received.message["Subject"])


def test_a_confirmation_for_a_reader_who_left_meanwhile_is_skipped(
    app: Flask, smtp_server: Recorder
) -> None:
    subscriber = newsletter.subscribe(db.session, email="reader@example.com", now=NOW)
    db.session.commit()
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    db.session.commit()
    row = db.session.scalar(select(OutboxEmail))
    assert row is not None
    assert _deliver(row.id, smtp_server.port, NOW, compose_subscriber_note).skipped == 1
    assert smtp_server.count() == 0


def test_the_sweeper_queues_again_only_emails_whose_message_was_lost(
    app: Flask, editor: User
) -> None:
    row = _ask_for_reset(editor)
    grace = timedelta(seconds=60)
    assert outbox.sweep(db.session, now=NOW + timedelta(seconds=30), grace=grace) == {}
    found = outbox.sweep(db.session, now=NOW + timedelta(minutes=2), grace=grace)
    assert found == {"broadsheet.send_password_reset": [row.id]}
    db.session.rollback()


def test_the_email_retry_schedule_and_its_sweeper_come_from_the_settings(tmp_path: Any) -> None:
    from broadsheet.config import ConfigError, load_settings

    defaults = load_settings({"SECRET_KEY": "k" * 20}, tmp_path)
    assert defaults["EMAIL_RETRY_DELAYS"] == (30.0, 120.0, 600.0, 1800.0)
    sweep = defaults["CELERY"]["beat_schedule"]["sweep-outbox"]
    assert sweep == {"task": "broadsheet.sweep_outbox", "schedule": 60.0}
    chosen = load_settings({"SECRET_KEY": "k" * 20, "EMAIL_RETRY_DELAYS": "5, 50"}, tmp_path)
    assert chosen["EMAIL_RETRY_DELAYS"] == (5.0, 50.0)
    with pytest.raises(ConfigError, match="EMAIL_RETRY_DELAYS is 'later'"):
        load_settings({"SECRET_KEY": "k" * 20, "EMAIL_RETRY_DELAYS": "later"}, tmp_path)


def test_staff_managers_see_the_emails_that_failed_and_why(
    app: Flask, editor: User, make_user: Any, smtp_server: Recorder
) -> None:
    smtp_server.refuse("ed@example.com", "550 5.1.1 No such user")
    _deliver(_ask_for_reset(editor).id, smtp_server.port, NOW)
    make_user(Role.ADMIN, email="ada@example.com", password=PASSWORD)
    admin = separate_client(app)
    sign_in(admin, "ada@example.com")
    page = admin.get("/admin/staff/").text
    assert "Emails that could not be sent" in page
    assert "password reset" in page
    assert "550 5.1.1 No such user" in page
    with pytest.raises(Forbidden):
        accounts.failed_emails(db.session, actor=editor)
