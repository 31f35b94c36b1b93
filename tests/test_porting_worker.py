"""Imports run by real worker processes: in slices, and resumed after a SIGKILL."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post
from broadsheet.content.search import search_public
from broadsheet.extensions import db, utcnow
from broadsheet.porting import services as porting
from broadsheet.porting import tasks
from broadsheet.porting.models import ImportItem, ImportJob, JobStatus
from tests import services
from tests.conftest import NOW
from tests.porting_support import start, write_wxr
from tests.workers import running_worker, wait_until, web_on_broker

POSTS = 1500


def _job(job_id: int) -> ImportJob:
    db.session.expire_all()
    job = db.session.get(ImportJob, job_id)
    assert job is not None
    return job


def _counts() -> tuple[int, int, int]:
    db.session.expire_all()
    posts = db.session.scalar(select(func.count()).select_from(Post)) or 0
    distinct = db.session.scalar(select(func.count(func.distinct(Post.title)))) or 0
    items = (
        db.session.scalar(
            select(func.count()).select_from(ImportItem).where(ImportItem.kind == "post")
        )
        or 0
    )
    return posts, distinct, items


def test_a_job_run_in_short_slices_finishes_with_every_post_once(
    app: Flask, make_user: object, tmp_path: Path
) -> None:
    make_user(Role.OWNER, email="owner@example.com")  # type: ignore[operator]
    job = start(write_wxr(tmp_path / "many.xml", 450, gallery=True), tmp_path / "imports")
    porting.confirm_import(db.session, job, actor=OPERATOR, now=NOW)
    db.session.commit()
    slices = 0
    while _job(job.id).status is not JobStatus.DONE and slices < 50:
        tasks.run_import(job.id, slice_seconds=0)  # each slice stops after its first batch
        slices += 1
    assert slices > 2
    assert _counts() == (450, 450, 450)
    assert _job(job.id).done == _job(job.id).total
    # Converted in a pool of processes, batch by batch: the galleries still found their image,
    # and every post is searchable, by its words and by its tag.
    last = db.session.scalars(select(Post).where(Post.slug == "generated-post-450")).one()
    assert "https://generated.example.com/uploads/bed.jpg" in last.html
    for n in (1, 200, 450):
        found = search_public(db.session, f'"generated post {n}"', now=NOW, number=1, per_page=5)
        assert [hit.post.slug for hit in found.hits] == [f"generated-post-{n}"]
    assert search_public(db.session, "Alpha", now=NOW, number=1, per_page=5).capped
    assert tasks.run_import(job.id) == "nothing to do"  # a finished job is left alone


def test_a_job_whose_worker_and_message_were_lost_is_sent_again(
    app: Flask, make_user: object, tmp_path: Path
) -> None:
    """The embedded broker redelivers nothing: when a worker dies, the job it ran stops. The
    beat's sweeper sends a job that stopped moving again, and the run skips every batch the
    lost one committed."""
    make_user(Role.OWNER, email="owner@example.com")  # type: ignore[operator]
    job = start(write_wxr(tmp_path / "many.xml", 450), tmp_path / "imports")
    porting.confirm_import(db.session, job, actor=OPERATOR, now=NOW)
    db.session.commit()
    # One slice, whose continuation goes nowhere (the test's broker has no worker): as if the
    # worker had died after it, with the message it held.
    tasks.run_import(job.id, slice_seconds=0)
    assert 0 < _job(job.id).done < 450
    assert _job(job.id).status is JobStatus.RUNNING
    beat = app.config["CELERY"]["beat_schedule"]["sweep-imports"]
    assert beat == {"task": "broadsheet.sweep_imports", "schedule": 60.0}
    sweep = app.extensions["celery"].tasks[beat["task"]]  # what the beat runs
    assert sweep() == 0  # it moved a moment ago
    stalled = _job(job.id)
    stalled.heartbeat_at = utcnow() - porting.STALLED - timedelta(seconds=1)
    db.session.commit()
    assert sweep() == 1
    assert sweep() == 0  # sent once: it counts as moved now
    slices = 0
    while _job(job.id).status is not JobStatus.DONE and slices < 50:
        tasks.run_import(job.id)  # what the worker does with the message sent again
        slices += 1
    assert _counts() == (450, 450, 450)
    assert sweep() == 0  # a finished job is never sent


@pytest.fixture
def rabbit_web(app: Flask, database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    with web_on_broker(app, database_url, "rabbitmq", tmp_path, "broadsheet_porting") as side:
        yield side.web, side.queue


@pytest.mark.queue
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_killed_mid_import_is_resumed_with_nothing_lost_or_doubled(
    rabbit_web: tuple[Flask, str], database_url: str, make_user: object, tmp_path: Path
) -> None:
    _web, queue = rabbit_web
    make_user(Role.OWNER, email="owner@example.com")  # type: ignore[operator]
    job = start(write_wxr(tmp_path / "many.xml", POSTS), tmp_path / "imports")
    with running_worker(tmp_path / "w1", database_url, services.AMQP_URL, queue) as worker:
        porting.confirm_import(db.session, job, actor=OPERATOR, now=NOW)
        db.session.commit()
        assert wait_until(lambda: _job(job.id).done >= 400, timeout=120, interval=0.05), (
            worker.output[-3000:]
        )
        os.killpg(worker.process.pid, signal.SIGKILL)  # the whole worker, mid-batch
        worker.process.wait(timeout=10)
    posts_at_kill = _counts()[0]
    assert 0 < posts_at_kill < POSTS
    assert _job(job.id).status is JobStatus.RUNNING
    # RabbitMQ hands the unacknowledged message to the next worker: the job runs again.
    with running_worker(tmp_path / "w2", database_url, services.AMQP_URL, queue) as worker:
        assert wait_until(lambda: _job(job.id).status is JobStatus.DONE, timeout=180), (
            worker.output[-3000:]
        )
    assert _counts() == (POSTS, POSTS, POSTS)
    assert not db.session.scalar(select(Post.id).where(Post.slug.like("generated-post-%-2")))
    # The index is written with each batch: the killed run's posts are searchable too.
    indexed = db.session.scalar(text("SELECT count(*) FROM search_documents"))
    assert indexed == POSTS
