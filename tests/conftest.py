"""Fixtures: an app, a database (SQLite and PostgreSQL), a client, a CLI runner.

Every test that asks for ``app`` runs once on SQLite and once on PostgreSQL.
Each backend gets a database of its own, created for this run and migrated
with the real migrations; after each test every table is emptied, so tests
see committed data exactly as the doors leave it and never each other's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, inspect, text

from broadsheet import create_app, page_cache
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_user
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import create_post
from broadsheet.extensions import db
from broadsheet.stats.counting import view_counter
from tests import services

# Fixture modules: an SMTP server on loopback, the newsletter's eager app, the page cache's.
pytest_plugins = ("tests.smtp", "tests.newsletter", "tests.page_cache_support")

# Settings from the developer's shell must not leak into the tests.
for _name in list(os.environ):
    if _name.startswith(("MAIL_", "CELERY_", "BROADSHEET_ENV")) or _name in {
        "DATABASE_URL", "SECRET_KEY", "SITE_URL", "CLOUDAMQP_URL", "FLASK_ENV",
        "RATELIMIT_STORAGE_URI", "BROADSHEET_INSTANCE", "BROADSHEET_QUEUE",
    }:  # fmt: skip
        del os.environ[_name]

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def base_config(instance: Path, database_url: str, **extra: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key-0123456789",
        "SITE_URL": "https://blog.example.com",
        "MAIL_BACKEND": "memory",
        "CELERY_BROKER_URL": "memory://",
        **extra,
    }


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this run's own, dropped at the end."""
    services.require_postgres()
    name = services.unique_name("broadsheet_test")
    with psycopg.connect(services.POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = services.POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with psycopg.connect(services.POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database URL: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'broadsheet.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    app = create_app(base_config(tmp_path_factory.mktemp("instance"), url))
    with app.app_context():
        from broadsheet.cli import upgrade_schema

        upgrade_schema()
        db.engine.dispose()
    return url


@pytest.fixture(scope="session")
def _apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Flask]]:
    """One app per database, reused by every test: building apps per test leaks pools."""
    apps: dict[str, Flask] = {}
    yield apps
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(
    database_url: str, _apps: dict[str, Flask], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    if database_url not in _apps:
        _apps[database_url] = create_app(
            base_config(tmp_path_factory.mktemp("instance"), database_url)
        )
    app = _apps[database_url]
    # Shared tasks called directly run in the default Celery app, and every create_app makes
    # its own the default: a test that made another app must not send this one's tasks there.
    app.extensions["celery"].set_default()
    app.extensions["celery"].set_current()
    with app.app_context():
        yield app
        db.session.remove()
        view_counter(app).flush()  # views this test read but did not write: not the next's
        _empty_tables()
        page_cache.invalidate(app)  # the tables were emptied beneath the cached pages


def _empty_tables() -> None:
    with db.engine.begin() as connection:
        # Only tables the migrations made: a model without its migration fails elsewhere.
        existing = set(inspect(connection).get_table_names())
        tables = [t.name for t in db.metadata.sorted_tables if t.name in existing]
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                connection.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (our tables)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def backend(app: Flask) -> str:
    return db.engine.dialect.name


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __len__(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app: Flask) -> Iterator[QueryCounter]:
    """Counts the SQL statements the app sends while the test runs."""
    counter = QueryCounter()

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counter.statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield counter
    event.remove(db.engine, "before_cursor_execute", record)


@pytest.fixture
def make_user(app: Flask) -> Any:
    counter = iter(range(1, 10_000))

    def make(role: Role = Role.AUTHOR, **fields: Any) -> User:
        number = next(counter)
        fields.setdefault("email", f"staff{number}@example.com")
        fields.setdefault("name", f"Staff Member {number}")
        # The test sets the site up as the operator would, from the command line.
        user = create_user(db.session, role=role, now=NOW, actor=OPERATOR, **fields)
        db.session.commit()
        return user

    return make


@pytest.fixture
def author(make_user: Any) -> User:
    return make_user(Role.AUTHOR, name="Maya Okafor", email="maya@example.com")


@pytest.fixture
def make_post(app: Flask, author: User) -> Any:
    """Create and commit a post through the service; published by default."""

    def make(title: str = "A post", **fields: Any) -> Post:
        fields.setdefault("markdown", f"Body of {title}.")
        fields.setdefault("authors", [author])
        fields.setdefault("now", NOW)
        fields.setdefault("status", PostStatus.PUBLISHED)
        fields.setdefault("actor", OPERATOR)
        post = create_post(db.session, title=title, **fields)
        db.session.commit()
        return post

    return make


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from tests.counters import SCHEMATHESIS_CASES

    if SCHEMATHESIS_CASES:
        terminalreporter.write_line(
            f"schemathesis ran {sum(SCHEMATHESIS_CASES.values())} cases "
            f"over {len(SCHEMATHESIS_CASES)} operations"
        )
