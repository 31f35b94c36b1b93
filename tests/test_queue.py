"""The job queue: enqueue after commit, and a real worker process doing the work.

Each test runs on both brokers: the embedded one (kombu's SQLAlchemy
transport on a SQLite file, no server) and RabbitMQ; and on both databases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from flask import Flask
from kombu import Connection
from sqlalchemy import select

from broadsheet import create_app
from broadsheet.content.models import Post, PostStatus
from broadsheet.extensions import db
from broadsheet.queue import enqueue_after_commit
from tests import services
from tests.conftest import NOW, base_config
from tests.workers import delete_queue, running_worker, wait_until


@pytest.fixture(params=["embedded", "rabbitmq"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "rabbitmq":
        services.require_rabbitmq()
        return services.AMQP_URL
    return f"sqla+sqlite:///{tmp_path / 'broker.db'}"


@pytest.fixture
def queue_name(broker_url: str) -> Iterator[str]:
    name = services.unique_name("broadsheet_test")
    yield name
    delete_queue(broker_url, name)


@pytest.fixture
def queue_app(
    app: Flask, database_url: str, broker_url: str, queue_name: str, tmp_path: Path
) -> Iterator[Flask]:
    """An app like ``app`` (same database, emptied after the test) sending to a real broker."""
    config = base_config(
        tmp_path / "instance",
        database_url,
        CELERY_BROKER_URL=broker_url,
        BROADSHEET_QUEUE=queue_name,
    )
    queue_app = create_app(config)
    with queue_app.app_context():
        yield queue_app
        db.session.remove()
        db.engine.dispose()


def _waiting(celery: Celery, queue: str) -> int:
    with Connection(celery.conf.broker_url, connect_timeout=5) as connection:
        simple = connection.SimpleQueue(queue)
        try:
            return int(simple.qsize())
        finally:
            simple.close()


def test_work_is_sent_only_when_its_transaction_commits(queue_app: Flask, queue_name: str) -> None:
    celery = queue_app.extensions["celery"]
    enqueue_after_commit(db.session, "broadsheet.publish_due_posts")
    db.session.rollback()
    assert _waiting(celery, queue_name) == 0
    enqueue_after_commit(db.session, "broadsheet.publish_due_posts")
    assert _waiting(celery, queue_name) == 0  # not before the commit either
    db.session.commit()
    assert _waiting(celery, queue_name) == 1


@pytest.mark.queue
def test_a_worker_started_later_does_the_work_queued_while_it_was_away(
    queue_app: Flask, make_post: Any, database_url: str, broker_url: str, queue_name: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    post = make_post(
        "Due while the worker was down",
        status=PostStatus.SCHEDULED,
        published_at=NOW + timedelta(hours=1),
        tags=["queue"],
    )
    # Queued with no worker running: the broker (RabbitMQ, or the SQLite file) keeps it.
    enqueue_after_commit(db.session, "broadsheet.publish_due_posts")
    db.session.commit()

    def published() -> bool:
        db.session.rollback()
        return db.session.scalar(select(Post.status).where(Post.id == post.id)) is (
            PostStatus.PUBLISHED
        )

    assert not published()
    with running_worker(tmp_path / "worker", database_url, broker_url, queue_name) as worker:
        assert wait_until(published, timeout=30), worker.output
        assert "publish_due_posts" in worker.output
        # Anything the task queued in turn is taken too: the queue ends empty.
        celery = queue_app.extensions["celery"]
        assert wait_until(lambda: _waiting(celery, queue_name) == 0, timeout=30), worker.output


GLOBALS_SCRIPT = """
import json, sys
from celery import current_app
from kombu import transport

seen = {"after_import": transport.TRANSPORT_ALIASES["sqla"]}
import broadsheet.queue
seen["after_queue_import"] = transport.TRANSPORT_ALIASES["sqla"]
if sys.argv[1] == "app":
    from broadsheet import create_app
    app = create_app({"INSTANCE_PATH": sys.argv[2], "SECRET_KEY": "k" * 32})
    seen["app_is_default"] = current_app._get_current_object() is app.extensions["celery"]
else:
    import broadsheet.worker
    seen["app_is_default"] = current_app._get_current_object() is broadsheet.worker.celery
seen["after_app"] = transport.TRANSPORT_ALIASES["sqla"]
print(json.dumps(seen))
"""


@pytest.mark.parametrize("how", ["app", "worker"])
def test_only_building_an_app_touches_kombu_and_only_the_worker_sets_celerys_default(
    tmp_path: Path, how: str
) -> None:
    """Importing changes nothing; create_app points the embedded aliases at our transport; only
    the worker's entry point makes its Celery app the process default."""
    env = {**os.environ, "BROADSHEET_INSTANCE": str(tmp_path / "instance")}
    run = subprocess.run(
        [sys.executable, "-c", GLOBALS_SCRIPT, how, str(tmp_path / "instance")],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["after_queue_import"] == seen["after_import"]  # kombu's own
    assert seen["after_app"] == "broadsheet.queue:EmbeddedTransport"
    assert seen["app_is_default"] is (how == "worker")
