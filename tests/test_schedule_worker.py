"""Scheduled posts go out on time with a real worker: a task timed for the post's moment,
queued after the schedule commits (or by the minute sweep for posts scheduled further ahead),
a no-op once the post was rescheduled."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from kombu import Connection

from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import load_post, schedule_post
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import sending
from tests.workers import running_worker, wait_until, web_on_broker

pytestmark = pytest.mark.queue

both_stacks = pytest.mark.parametrize(
    ("database_url", "broker"),
    [
        pytest.param("sqlite", "embedded", id="embedded"),
        pytest.param("postgresql", "rabbitmq", id="rabbitmq"),
    ],
    indirect=["database_url"],
)
ON_TIME = 5.0  # seconds after its moment by which a scheduled post must be public


@dataclass
class Stack:
    web: Flask
    database_url: str
    broker_url: str
    queue: str
    tmp_path: Path

    def worker(self) -> Any:
        return running_worker(
            self.tmp_path / "worker", self.database_url, self.broker_url, self.queue
        )


@pytest.fixture
def stack(app: Flask, database_url: str, broker: str, tmp_path: Path) -> Iterator[Stack]:
    with web_on_broker(app, database_url, broker, tmp_path, "broadsheet_schedule") as side:
        yield Stack(side.web, database_url, side.broker_url, side.queue, tmp_path)


def _whole_second(seconds: float) -> datetime:
    return (utcnow() + timedelta(seconds=seconds)).replace(microsecond=0)


def _status(post_id: int) -> tuple[PostStatus, datetime | None]:
    db.session.rollback()
    post = load_post(db.session, post_id)
    return post.status, post.published_at


def _public_at(post_id: int, deadline: datetime) -> datetime | None:
    """When the post was first seen published (polled every 0.1 s), or None by ``deadline``."""
    while utcnow() < deadline:
        if _status(post_id)[0] is PostStatus.PUBLISHED:
            return utcnow()
        time.sleep(0.1)
    return None


@both_stacks
def test_a_post_scheduled_20_s_ahead_is_public_within_5_s_of_its_time(
    stack: Stack, make_post: Any
) -> None:
    with stack.worker() as worker:  # no beat: the timed task alone must do it
        post: Post = make_post("On the dot", status=PostStatus.DRAFT)
        at = _whole_second(20)
        schedule_post(db.session, post, actor=OPERATOR, at=at, now=utcnow())
        db.session.commit()  # the door's one commit; the timed task is queued after it
        # The worker holding the timed message still takes other work (here the beat's sweep,
        # which queues one more timed task for the same post: harmless).
        stack.web.extensions["celery"].send_task("broadsheet.publish_due_posts")
        done = re.compile(r"publish_due_posts\[[^]]+\] succeeded")
        swept = wait_until(lambda: done.search(worker.output), timeout=5)
        assert swept, worker.output[-3000:]
        early = _public_at(post.id, at - timedelta(seconds=1))
        seen = _public_at(post.id, at + timedelta(seconds=ON_TIME))
        assert early is None, "published before its time"
        assert seen is not None, worker.output[-3000:]
        assert (seen - at).total_seconds() <= ON_TIME
        assert _status(post.id) == (PostStatus.PUBLISHED, at)
        print(f"public {(seen - at).total_seconds():.2f} s after its time")


@both_stacks
def test_a_reschedule_makes_the_first_timed_task_a_no_op(stack: Stack, make_post: Any) -> None:
    with stack.worker() as worker:
        post: Post = make_post("Moved", status=PostStatus.DRAFT)
        first = _whole_second(6)
        sending.schedule_with_email(
            db.session, post, actor=OPERATOR, at=first, now=utcnow(), email=False
        )
        db.session.commit()
        post = load_post(db.session, post.id)
        second = first + timedelta(seconds=8)
        sending.schedule_with_email(
            db.session, post, actor=OPERATOR, at=second, now=utcnow(), email=False
        )
        db.session.commit()
        # The first task runs at its time and finds the post moved on.
        assert _public_at(post.id, second - timedelta(seconds=1)) is None
        seen = _public_at(post.id, second + timedelta(seconds=ON_TIME))
        assert seen is not None, worker.output[-3000:]
        assert (seen - second).total_seconds() <= ON_TIME
        assert _status(post.id) == (PostStatus.PUBLISHED, second)
        time.sleep(1)
    published = worker.output.count(f"published scheduled post {post.id} ")
    assert published == 1, worker.output[-3000:]
    assert worker.output.count("broadsheet.publish_scheduled_post") >= 2  # both tasks ran


@both_stacks
def test_the_minute_sweep_times_a_post_scheduled_long_before(stack: Stack, make_post: Any) -> None:
    # Written straight into the database, as a post scheduled an hour ago for now + 15 s:
    # no timed task was queued for it then.
    at = _whole_second(15)
    post: Post = make_post("Long planned", status=PostStatus.SCHEDULED, published_at=at)
    with stack.worker() as worker:
        stack.web.extensions["celery"].send_task("broadsheet.publish_due_posts")  # the beat
        seen = _public_at(post.id, at + timedelta(seconds=ON_TIME))
        assert seen is not None, worker.output[-3000:]
        assert seen >= at
        assert (seen - at).total_seconds() <= ON_TIME


def _waiting(stack: Stack) -> int:
    with Connection(stack.broker_url, connect_timeout=5) as connection:
        simple = connection.SimpleQueue(stack.queue)
        try:
            return int(simple.qsize())
        finally:
            simple.close()


@both_stacks
def test_only_a_post_due_within_ten_minutes_gets_its_timed_task_when_scheduled(
    stack: Stack, make_post: Any
) -> None:
    # A worker holds a timed message unacknowledged until it runs; RabbitMQ's consumer_timeout
    # (30 min) would close its channel, so later posts wait for the minute sweep.
    far: Post = make_post("Next week", status=PostStatus.DRAFT)
    schedule_post(db.session, far, actor=OPERATOR, at=utcnow() + timedelta(minutes=11),
                  now=utcnow())  # fmt: skip
    db.session.commit()
    assert _waiting(stack) == 0
    near: Post = make_post("Soon", status=PostStatus.DRAFT)
    schedule_post(db.session, near, actor=OPERATOR, at=utcnow() + timedelta(minutes=9),
                  now=utcnow())  # fmt: skip
    db.session.rollback()  # nothing queued for a schedule that was not committed
    assert _waiting(stack) == 0
    near = load_post(db.session, near.id)
    schedule_post(db.session, near, actor=OPERATOR, at=utcnow() + timedelta(minutes=9),
                  now=utcnow())  # fmt: skip
    db.session.commit()
    assert _waiting(stack) == 1
