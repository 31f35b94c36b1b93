# Over 400 lines: NEWSLETTER.md's crash cases with real workers, sharing one stack fixture.
"""The newsletter's promise with real worker processes, crashes included (NEWSLETTER.md).

Each test runs on the embedded stack (SQLite, the SQLite broker) and/or the
production one (PostgreSQL, RabbitMQ), with a real ``celery worker``
subprocess sending over SMTP to an aiosmtpd server on 127.0.0.1.  The test
process plays the web door (it publishes and commits) and, where a case
needs the sweeper, the beat (it sends the sweep task every second, as the
beat schedule does every 30 s in production).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, insert, select

from broadsheet import create_app
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import load_post
from broadsheet.extensions import db
from broadsheet.newsletter import sending
from broadsheet.newsletter.models import (
    Delivery,
    DeliveryStatus,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
)
from broadsheet.newsletter.tokens import Purpose, make_token
from tests import services
from tests.conftest import NOW, base_config
from tests.smtp import Recorder, free_port
from tests.tcp_proxy import TcpProxy
from tests.workers import Worker, running_worker, wait_until, web_on_broker

pytestmark = pytest.mark.queue

EMBEDDED = pytest.param("sqlite", "embedded", id="embedded")
PRODUCTION = pytest.param("postgresql", "rabbitmq", id="rabbitmq")
both_stacks = pytest.mark.parametrize(
    ("database_url", "broker"), [EMBEDDED, PRODUCTION], indirect=["database_url"]
)
production_stack = pytest.mark.parametrize(
    ("database_url", "broker"), [PRODUCTION], indirect=["database_url"]
)
SEND_TIMEOUT = 120.0


@dataclass
class Stack:
    web: Flask
    database_url: str
    broker_url: str
    queue: str
    smtp: Recorder
    tmp_path: Path

    def worker_env(self, **extra: str) -> dict[str, str]:
        return {
            "MAIL_BACKEND": "smtp",
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(self.smtp.port),
            "SITE_URL": "https://blog.example.com",
            "NEWSLETTER_BATCH_SIZE": "20",
            "NEWSLETTER_RETRY_DELAYS": "1,2",
            "NEWSLETTER_LEASE_SECONDS": "4",
            "NEWSLETTER_STALL_SECONDS": "2",
            **extra,
        }

    def worker(self, name: str = "worker", **options: Any) -> Any:
        env = self.worker_env(**options.pop("env", {}))
        return running_worker(
            self.tmp_path / name, self.database_url, self.broker_url, self.queue, env=env,
            **options,
        )  # fmt: skip

    def tick(self, celery_app: Any = None) -> None:
        """What the beat does: ask a worker to sweep."""
        (celery_app or self.web.extensions["celery"]).send_task("broadsheet.sweep_newsletter")


@pytest.fixture
def stack(
    app: Flask, database_url: str, broker: str, smtp_server: Recorder, tmp_path: Path
) -> Iterator[Stack]:
    with web_on_broker(app, database_url, broker, tmp_path, "broadsheet_newsletter") as side:
        yield Stack(side.web, database_url, side.broker_url, side.queue, smtp_server, tmp_path)


def _subscribers(count: int, *, prefix: str = "reader") -> list[str]:
    emails = [f"{prefix}{n:05d}@example.com" for n in range(count)]
    db.session.execute(
        insert(Subscriber),
        [
            {"email": email, "status": SubscriberStatus.CONFIRMED, "created_at": NOW,
             "confirmed_at": NOW, "source": "test", "consent": "test"}
            for email in emails
        ],
    )  # fmt: skip
    db.session.commit()
    return emails


def _publish(make_post: Any, title: str = "News for everyone") -> Send:
    post: Post = make_post(title, status=PostStatus.DRAFT)
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()  # the door's one commit; the work is enqueued after it
    assert send is not None
    return send


def _counts(send_id: int) -> dict[DeliveryStatus, int]:
    db.session.rollback()
    return dict(
        db.session.execute(  # type: ignore[arg-type]
            select(Delivery.status, func.count())
            .where(Delivery.send_id == send_id)
            .group_by(Delivery.status)
        ).all()
    )


def _all_sent(stack: Stack, send_id: int, total: int) -> bool:
    return (
        _counts(send_id).get(DeliveryStatus.SENT, 0) == total
        and len(stack.smtp.recipients()) == total
    )


def _settled(send_id: int) -> bool:
    counts = _counts(send_id)
    return not counts.get(DeliveryStatus.QUEUED) and not counts.get(DeliveryStatus.SENDING)


def _pool_children(worker: Worker) -> list[int]:
    pid = worker.process.pid
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def _longest_task_seconds(output: str) -> float:
    return max(float(s) for s in re.findall(r"succeeded in ([0-9.]+)s", output))


def _send_status(send_id: int) -> SendStatus:
    db.session.rollback()
    status = db.session.scalar(select(Send.status).where(Send.id == send_id))
    assert status is not None
    return status


def _assert_promise_kept(stack: Stack, emails: list[str], killed: int) -> None:
    received = stack.smtp.recipients()
    missing = [email for email in emails if received[email] == 0]
    assert missing == [], f"{len(missing)} recipients got nothing"
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= killed, f"{duplicates} duplicates for {killed} killed process(es)"
    assert set(received) == set(emails)


@both_stacks
def test_a_published_post_reaches_every_subscriber_exactly_once(
    stack: Stack, make_post: Any
) -> None:
    emails = _subscribers(60)
    # The publish writes the first 25 rows; worker tasks list the rest in two more steps.
    stack.web.config["NEWSLETTER_LIST_CHUNK"] = 25
    with stack.worker(env={"NEWSLETTER_LIST_CHUNK": "25"}) as worker:
        send = _publish(make_post)
        assert _counts(send.id) == {DeliveryStatus.QUEUED: 25}
        assert send.recipients == 60
        assert wait_until(lambda: _all_sent(stack, send.id, 60), timeout=SEND_TIMEOUT), (
            worker.output[-3000:]
        )
        assert wait_until(lambda: _send_status(send.id) is SendStatus.DONE, timeout=10)
    assert set(stack.smtp.recipients().values()) == {1}
    assert sorted(stack.smtp.recipients()) == emails
    assert _longest_task_seconds(worker.output) < 5  # small batches: no task holds a message long
    # Each message carries its stable Message-ID, one per subscriber.
    assert len({r.message_id for r in stack.smtp.received}) == 60


@both_stacks
def test_publishing_twice_and_running_the_same_send_twice_at_once_mails_each_reader_once(
    stack: Stack, make_post: Any
) -> None:
    emails = _subscribers(40)
    post: Post = make_post("Twice", status=PostStatus.DRAFT)
    first = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    again = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    assert first is not None
    assert again is None
    # The same send's batches queued twice over: both run, each row goes once.
    celery = stack.web.extensions["celery"]
    celery.send_task("broadsheet.dispatch_send", args=[first.id])
    celery.send_task("broadsheet.send_batch", args=[first.id, 0, 10**9])
    with stack.worker(concurrency=2) as worker:
        assert wait_until(lambda: _all_sent(stack, first.id, 40), timeout=SEND_TIMEOUT), (
            worker.output[-3000:]
        )
        time.sleep(1.0)  # let any duplicate task run to its end
    assert stack.smtp.recipients() == dict.fromkeys(emails, 1)


@production_stack
def test_a_publish_that_rolls_back_enqueues_nothing_and_mails_nobody(
    stack: Stack, make_post: Any
) -> None:
    _subscribers(5)
    post: Post = make_post("Never", status=PostStatus.DRAFT)
    sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.rollback()
    with stack.worker():
        time.sleep(2.0)
    assert stack.smtp.count() == 0
    assert db.session.scalar(select(func.count()).select_from(Send)) == 0


@both_stacks
def test_temporary_refusals_are_retried_and_permanent_ones_fail_with_the_servers_reply(
    stack: Stack, make_post: Any
) -> None:
    emails = _subscribers(6)
    stack.smtp.refuse(emails[0], "451 4.7.1 Greylisted, come back later", times=2)
    stack.smtp.refuse(emails[1], "550 5.1.1 Mailbox unavailable")
    with stack.worker(env={"NEWSLETTER_MAX_ERROR_STREAK": "10"}) as worker:
        send = _publish(make_post)
        assert wait_until(lambda: _settled(send.id), timeout=SEND_TIMEOUT), worker.output[-3000:]
    rows = {
        email: (status, attempts, error)
        for email, status, attempts, error in db.session.execute(
            select(Subscriber.email, Delivery.status, Delivery.attempts, Delivery.last_error).join(
                Delivery, Delivery.subscriber_id == Subscriber.id
            )
        )
    }
    assert rows[emails[0]][:2] == (DeliveryStatus.SENT, 3)  # two refusals, then through
    assert rows[emails[1]] == (DeliveryStatus.FAILED, 1, "550 5.1.1 Mailbox unavailable")
    assert stack.smtp.recipients() == dict.fromkeys([emails[0], *emails[2:]], 1)


@production_stack
def test_broker_down_at_publish_time_the_post_is_published_and_the_sweeper_sends_it_later(
    stack: Stack, make_post: Any, database_url: str, tmp_path: Path
) -> None:
    emails = _subscribers(30)
    down = create_app(
        base_config(tmp_path / "down", database_url,
                    CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//",
                    BROADSHEET_QUEUE=stack.queue, NEWSLETTER_LIST_CHUNK=20)
    )  # fmt: skip
    post_id = make_post("Published while the broker was down", status=PostStatus.DRAFT).id
    down.extensions["celery"].set_current()
    with down.app_context():
        post = load_post(db.session, post_id)
        started = time.monotonic()
        send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
        db.session.commit()  # succeeds: the enqueue after it fails and is only logged
        assert time.monotonic() - started < 10
        assert send is not None
        send_id = send.id
        db.session.remove()
        db.engine.dispose()
    stack.web.extensions["celery"].set_current()
    db.session.rollback()
    assert db.session.scalar(select(Post.status).where(Post.id == post_id)) is (
        PostStatus.PUBLISHED
    )
    assert _counts(send_id) == {DeliveryStatus.QUEUED: 20}  # the rest is listed by the worker

    with stack.worker(env={"NEWSLETTER_LIST_CHUNK": "20"}) as worker:
        time.sleep(1.0)
        assert stack.smtp.count() == 0  # nothing was queued: only the database knows

        def swept() -> bool:
            stack.tick()
            return _all_sent(stack, send_id, 30)

        assert wait_until(swept, timeout=SEND_TIMEOUT, interval=1.0), worker.output[-3000:]
    assert stack.smtp.recipients() == dict.fromkeys(emails, 1)


def _kill_mid_send(stack: Stack, send_id: int, worker: Worker, *, after: int) -> int:
    assert wait_until(lambda: stack.smtp.count() >= after, timeout=SEND_TIMEOUT), worker.output[
        -3000:
    ]
    children = _pool_children(worker)
    for child in children:
        os.kill(child, signal.SIGKILL)
    return len(children)


@production_stack
def test_a_pool_process_killed_mid_send_loses_nobody_and_duplicates_at_most_one(
    stack: Stack, make_post: Any
) -> None:
    """RabbitMQ hands the killed task's message out again (``task_reject_on_worker_lost``);
    its new run takes back the rows its dead run had claimed.  No sweeper runs here."""
    total = 2000
    emails = _subscribers(total)
    stack.smtp.delay = 0.002
    killed = 0
    with stack.worker() as worker:
        send = _publish(make_post)
        killed += _kill_mid_send(stack, send.id, worker, after=300)
        killed += _kill_mid_send(stack, send.id, worker, after=stack.smtp.count() + 300)

        def finished() -> bool:
            return _settled(send.id) and len(stack.smtp.recipients()) == total

        assert wait_until(finished, timeout=SEND_TIMEOUT, interval=1.0), worker.output[-3000:]
    assert killed == 2
    _assert_promise_kept(stack, emails, killed)
    assert _counts(send.id) == {DeliveryStatus.SENT: total}
    assert _send_status(send.id) is SendStatus.DONE


@pytest.mark.parametrize(("database_url", "broker"), [EMBEDDED], indirect=["database_url"])
def test_on_the_embedded_broker_a_killed_pool_process_is_recovered_by_the_sweeper(
    stack: Stack, make_post: Any
) -> None:
    """The embedded broker never hands out a killed task's message again, and the worker
    that lost the process stops taking messages (NEWSLETTER.md); the platform restarts it.
    The rows the dead run claimed come back through the sweeper once their lease is over."""
    total = 2000
    emails = _subscribers(total)
    stack.smtp.delay = 0.002
    with stack.worker("first") as worker:
        send = _publish(make_post)
        killed = _kill_mid_send(stack, send.id, worker, after=300)
        time.sleep(2.0)
        os.killpg(worker.process.pid, signal.SIGKILL)  # what a supervisor does to a stuck one
        worker.process.wait(timeout=10)
    with stack.worker("second") as worker:

        def finished() -> bool:
            stack.tick()
            return _settled(send.id) and len(stack.smtp.recipients()) == total

        assert wait_until(finished, timeout=SEND_TIMEOUT, interval=1.0), worker.output[-3000:]
    # The worker's main process was killed too, but while idle: it held nothing unmarked.
    _assert_promise_kept(stack, emails, killed)
    assert _counts(send.id) == {DeliveryStatus.SENT: total}
    assert _send_status(send.id) is SendStatus.DONE


@production_stack
def test_without_a_sweeper_a_killed_batch_comes_back_only_through_the_brokers_requeue(
    stack: Stack, make_post: Any
) -> None:
    """The RabbitMQ case above recovers with no sweeper at all: that is
    ``task_reject_on_worker_lost`` at work.  Here a worker without it leaves
    the killed batch claimed, and nothing but the sweeper would free it."""
    _subscribers(400)
    stack.smtp.delay = 0.02  # slow enough that the kill lands inside a batch
    with stack.worker(app_module="tests.worker_without_requeue") as worker:
        send = _publish(make_post)
        _kill_mid_send(stack, send.id, worker, after=30)
        assert not wait_until(lambda: _settled(send.id), timeout=15), "recovered without requeue"
    assert _counts(send.id).get(DeliveryStatus.SENDING, 0) > 0


@production_stack
def test_the_main_worker_process_killed_with_a_second_worker_running_loses_nobody(
    stack: Stack, make_post: Any
) -> None:
    total = 1000
    emails = _subscribers(total)
    stack.smtp.delay = 0.002
    with stack.worker("first") as first, stack.worker("second") as second:
        send = _publish(make_post)
        assert wait_until(lambda: stack.smtp.count() >= 200, timeout=SEND_TIMEOUT)
        os.kill(first.process.pid, signal.SIGKILL)
        try:

            def finished() -> bool:
                stack.tick()  # a child orphaned mid-batch may leave claims for the sweeper
                return _settled(send.id) and len(stack.smtp.recipients()) == total

            assert wait_until(finished, timeout=SEND_TIMEOUT, interval=1.0), second.output[-3000:]
        finally:
            with contextlib.suppress(ProcessLookupError):  # the orphaned pool child
                os.killpg(first.process.pid, signal.SIGKILL)
    _assert_promise_kept(stack, emails, killed=2)  # the main process and its orphaned child
    sent_before = {r.message_id for r in stack.smtp.received}
    assert len(sent_before) == total


@both_stacks
def test_a_platform_restart_mid_send_loses_nobody_and_duplicates_at_most_one(
    stack: Stack, make_post: Any
) -> None:
    """SIGTERM to the whole process group, SIGKILL 30 s later (as Heroku does), with the
    Procfile's REMAP_SIGTERM=SIGQUIT; then the platform starts the worker again."""
    total = 1000
    emails = _subscribers(total)
    stack.smtp.delay = 0.002
    with stack.worker("before", env={"REMAP_SIGTERM": "SIGQUIT"}) as worker:
        send = _publish(make_post)
        assert wait_until(lambda: stack.smtp.count() >= 200, timeout=SEND_TIMEOUT)
        processes = 1 + len(_pool_children(worker))
        os.killpg(worker.process.pid, signal.SIGTERM)
        try:
            worker.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(timeout=10)
    with stack.worker("after") as worker:

        def finished() -> bool:
            stack.tick()
            return _settled(send.id) and len(stack.smtp.recipients()) == total

        assert wait_until(finished, timeout=SEND_TIMEOUT, interval=1.0), worker.output[-3000:]
    _assert_promise_kept(stack, emails, killed=processes)
    assert _counts(send.id) == {DeliveryStatus.SENT: total}


@both_stacks
def test_only_readers_who_want_the_post_get_it_and_one_who_leaves_before_the_batch_is_skipped(
    stack: Stack, make_post: Any
) -> None:
    from tests.newsletter import make_subscriber

    everything = [make_subscriber(f"all{n}@example.com").email for n in range(3)]
    make_subscriber("flask@example.com", tags=["Flask"])
    make_subscriber("sql-only@example.com", tags=["SQL"])
    make_subscriber("pending@example.com", status=SubscriberStatus.PENDING)
    leaving = make_subscriber("leaving@example.com")
    post: Post = make_post("Flask news", status=PostStatus.DRAFT, tags=["Flask"])
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    assert send is not None
    assert send.recipients == 5  # three for everything, the Flask reader, the one leaving
    # Frozen at publish, queued, not yet sent: the reader unsubscribes through the site's door.
    token = make_token(stack.web.config["SECRET_KEY"], Purpose.UNSUBSCRIBE, leaving.id,
                       leaving.email)  # fmt: skip
    left = stack.web.test_client().post(f"/unsubscribe/{token}")
    assert left.status_code == 200
    with stack.worker() as worker:
        assert wait_until(lambda: _settled(send.id), timeout=SEND_TIMEOUT), worker.output[-3000:]
    assert stack.smtp.recipients() == dict.fromkeys([*everything, "flask@example.com"], 1)
    assert _counts(send.id) == {DeliveryStatus.SENT: 4, DeliveryStatus.SKIPPED: 1}


@production_stack
def test_rabbitmq_lost_and_back_mid_send_delivers_everything(stack: Stack, make_post: Any) -> None:
    """The worker's road to RabbitMQ is cut mid-send and comes back on the same address, as
    a restarted broker would (the shared RabbitMQ itself is not restarted under other tests)."""
    amqp = urlsplit(services.AMQP_URL)
    road = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672)
    port = road.port
    total = 600
    emails = _subscribers(total)
    stack.smtp.delay = 0.003
    env = {"CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{port}//"}
    try:
        with stack.worker(env=env) as worker:
            send = _publish(make_post)
            assert wait_until(lambda: stack.smtp.count() >= 100, timeout=SEND_TIMEOUT)
            road.cut()
            time.sleep(2.0)
            road = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672, port=port)

            def finished() -> bool:
                stack.tick()  # the beat's sweeper, as in production
                return _settled(send.id) and len(stack.smtp.recipients()) == total

            assert wait_until(finished, timeout=SEND_TIMEOUT, interval=1.0), worker.output[-3000:]
    finally:
        road.cut()
    _assert_promise_kept(stack, emails, killed=1)
    assert _counts(send.id) == {DeliveryStatus.SENT: total}


class _DatabaseRoad:
    """The worker's own road to PostgreSQL, which a test cuts and reopens on the same address,
    as a restart looks to the worker; the shared server itself is never restarted."""

    def __init__(self, database_url: str) -> None:
        database = urlsplit(database_url)
        self.target = (database.hostname or "127.0.0.1", database.port or 5432)
        self.proxy = TcpProxy(*self.target)
        via = database_url.replace(f":{self.target[1]}/", f":{self.proxy.port}/", 1)
        self.env = {"DATABASE_URL": via}

    def cut(self) -> None:
        self.proxy.cut()

    def reopen(self) -> None:
        self.proxy = TcpProxy(*self.target, port=self.proxy.port)


@contextmanager
def _road_to_the_database(stack: Stack) -> Iterator[_DatabaseRoad]:
    road = _DatabaseRoad(stack.database_url)
    try:
        yield road
    finally:
        road.cut()


@production_stack
def test_a_confirmation_queued_while_postgresql_restarts_still_goes_out(stack: Stack) -> None:
    """A reader subscribes just before PostgreSQL restarts (`make soak` restarts it under
    traffic): the worker takes the confirmation task while the database is away, and the
    email still goes once the database is back.  The worker's road to PostgreSQL is cut and
    reopened on the same address; the shared server itself is not restarted."""
    from broadsheet.newsletter import services as newsletter

    with _road_to_the_database(stack) as road, stack.worker(env=road.env) as worker:
        road.cut()
        newsletter.subscribe(db.session, email="new.reader@example.com", now=NOW)
        db.session.commit()  # the confirmation task is enqueued after this commit
        assert wait_until(lambda: "OperationalError" in worker.output, timeout=30), worker.output[
            -3000:
        ]
        road.reopen()
        assert wait_until(lambda: stack.smtp.count() == 1, timeout=90), worker.output[-3000:]
    assert list(stack.smtp.recipients()) == ["new.reader@example.com"]


@production_stack
def test_a_send_that_meets_postgresql_away_goes_on_when_it_is_back_without_the_sweeper(
    stack: Stack, make_post: Any
) -> None:
    """`make soak` restarts PostgreSQL mid-send: the worker's tasks that find it away try again
    every few seconds, so the send goes on within seconds of its return, not after the
    sweeper's two-minute lease (no sweeper runs here)."""
    emails = _subscribers(20)
    with _road_to_the_database(stack) as road, stack.worker(env=road.env) as worker:
        road.cut()
        send = _publish(make_post)  # the web reaches the database; the worker does not
        assert wait_until(lambda: "OperationalError" in worker.output, timeout=30), worker.output[
            -3000:
        ]
        road.reopen()
        assert wait_until(lambda: _all_sent(stack, send.id, 20), timeout=60), worker.output[-3000:]
    assert sorted(stack.smtp.recipients()) == emails
    assert set(stack.smtp.recipients().values()) == {1}
