"""Helpers for the newsletter tests: an app whose tasks run at once, subscribers, links."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask_mailman import EmailMessage
from sqlalchemy import select

from broadsheet import create_app
from broadsheet.content.models import Tag
from broadsheet.content.services import find_or_create_tags
from broadsheet.extensions import db, limiter
from broadsheet.newsletter.models import Subscriber, SubscriberStatus, SubscriberTag
from tests.conftest import NOW, base_config


@pytest.fixture(scope="session")
def _eager_apps() -> Iterator[dict[str, Flask]]:
    """One eager app per database, disposed of at the end like ``_apps``."""
    apps: dict[str, Flask] = {}
    yield apps
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def eager_app(
    app: Flask,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    _eager_apps: dict[str, Flask],
) -> Iterator[Flask]:
    """Like ``app`` (same database, emptied after), but every task runs as it is queued."""
    if database_url not in _eager_apps:
        _eager_apps[database_url] = create_app(
            base_config(
                tmp_path_factory.mktemp("eager"), database_url, CELERY_TASK_ALWAYS_EAGER=True
            )
        )
    eager = _eager_apps[database_url]
    # Shared tasks run on the current Celery app: make it this one's.
    eager.extensions["celery"].set_current()
    with eager.app_context():
        eager.extensions["mailman"].outbox = []
        limiter.reset()
        yield eager
        db.session.remove()
    app.extensions["celery"].set_current()


def outbox(app: Flask) -> list[EmailMessage]:
    return list(getattr(app.extensions["mailman"], "outbox", []))


def make_subscriber(
    email: str,
    *,
    tags: Sequence[str] = (),
    status: SubscriberStatus = SubscriberStatus.CONFIRMED,
    confirmed_at: datetime | None = NOW,
) -> Subscriber:
    subscriber = Subscriber(
        email=email,
        status=status,
        created_at=NOW,
        confirmed_at=confirmed_at if status is SubscriberStatus.CONFIRMED else None,
        source="test",
        consent="test",
    )
    subscriber.tag_links = [
        SubscriberTag(tag=tag) for tag in find_or_create_tags(db.session, tags, now=NOW)
    ]
    db.session.add(subscriber)
    db.session.commit()
    return subscriber


def tag(name: str) -> Tag:
    found = db.session.scalar(select(Tag).where(Tag.name == name))
    assert found is not None
    return found


def link(message: EmailMessage | Any, path: str) -> str:
    """The first link in a message's text to ``path`` (e.g. "/unsubscribe/"), as a site path."""
    body = message.body if isinstance(message, EmailMessage) else str(message)
    found = re.search(rf"https://blog\.example\.com({re.escape(path)}[^\s>]+)", body)
    assert found, f"no {path} link in:\n{body}"
    return found.group(1)


def recipients(app: Flask) -> list[str]:
    return sorted(address for message in outbox(app) for address in message.to)
