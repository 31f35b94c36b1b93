"""The page cache's fixtures: the app on either store, a reader, a publisher, helpers.

Every test that asks for ``site`` runs against both stores (the embedded
folder under instance/, and a real Redis at 127.0.0.1:6379 under a key prefix
of this run's own) and both databases.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.test import TestResponse

from broadsheet import create_app, page_cache
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostStatus
from broadsheet.extensions import db
from tests import services
from tests.conftest import NOW, base_config


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix of this run's own; its keys are deleted at the end."""
    prefix = services.unique_name("broadsheet_test_pages") + ":"
    yield prefix
    if services.reachable(services.REDIS_URL):
        client = redis.Redis.from_url(services.REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
        client.close()


@pytest.fixture(scope="session")
def _redis_apps() -> Iterator[dict[str, Flask]]:
    apps: dict[str, Flask] = {}
    yield apps
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(params=["embedded", "redis"])
def site(
    request: pytest.FixtureRequest,
    app: Flask,
    database_url: str,
    _redis_apps: dict[str, Flask],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Flask]:
    """The app, with the page cache in a folder under instance/ or in Redis."""
    if request.param == "embedded":
        yield app
        return
    services.require_redis()
    if database_url not in _redis_apps:
        _redis_apps[database_url] = create_app(
            base_config(
                tmp_path_factory.mktemp("instance"),
                database_url,
                PAGE_CACHE_URL=services.REDIS_URL,
                PAGE_CACHE_PREFIX=request.getfixturevalue("redis_prefix"),
            )
        )
        keep_tasks_on(app)
    with _redis_apps[database_url].app_context():
        page_cache.invalidate(_redis_apps[database_url])  # the tables were emptied beneath it
        yield _redis_apps[database_url]
        db.session.remove()


def keep_tasks_on(app: Flask) -> None:
    """Creating an app makes its Celery app the default one, which shared tasks called
    directly run in: give that back to the suite's app."""
    app.extensions["celery"].set_default()


@contextmanager
def another_app(app: Flask, config: dict[str, Any]) -> Iterator[Flask]:
    other = create_app(config)
    keep_tasks_on(app)
    try:
        with other.app_context():
            yield other
    finally:
        page_cache.close(other)
        with other.app_context():
            db.engine.dispose()


def eventually(check: Any, seconds: float = 3.0) -> Any:
    """``check()``'s first true answer, asked again for up to ``seconds``: a change made in
    another process reaches this one's listener (PostgreSQL) a few milliseconds after it
    commits."""
    deadline = time.monotonic() + seconds
    while not (answer := check()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return answer


@pytest.fixture
def reader(site: Flask) -> FlaskClient:
    return site.test_client()


@pytest.fixture
def publish(site: Flask, author: Any) -> Any:
    """Create and commit a post through the service (published unless told otherwise)."""

    def make(title: str, **fields: Any) -> Post:
        fields.setdefault("status", PostStatus.PUBLISHED)
        fields.setdefault("now", NOW)
        post = content.create_post(
            db.session,
            title=title,
            markdown=f"Body of {title}.",
            authors=[author],
            tags=fields.pop("tags", ["Flask"]),
            actor=OPERATOR,
            **fields,
        )
        db.session.commit()
        return post

    return make


def fetch(
    client: FlaskClient, url: str, method: str = "GET", **kwargs: Any
) -> tuple[TestResponse, int]:
    """The response to ``url`` and how many SQL statements answering it took."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.open(url, method=method, **kwargs)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return response, len(statements)


@pytest.fixture
def earlier(publish: Any) -> Post:
    return publish("Earlier", published_at=NOW - timedelta(days=3))
