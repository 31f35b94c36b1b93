"""/healthz and /readyz, as the platform's router or an operator's monitor reads them."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from broadsheet import create_app
from broadsheet.extensions import db
from broadsheet.ops import run_checks
from tests import services
from tests.conftest import base_config


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sqlite_file(folder: Path) -> str:
    path = folder / "site.db"
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


_built: list[Flask] = []


@pytest.fixture(autouse=True)
def _dispose_built_apps() -> Iterator[None]:
    """Close the pools of the apps a test built, so no connection outlives its test."""
    yield
    while _built:
        with _built.pop().app_context():
            db.engine.dispose()


def build(tmp_path: Path, database_url: str, broker_url: str) -> Flask:
    app = create_app(base_config(tmp_path / "instance", database_url, CELERY_BROKER_URL=broker_url))
    _built.append(app)
    return app


def test_healthz_answers_even_when_nothing_else_does(tmp_path: Path) -> None:
    port = closed_port()
    app = build(
        tmp_path,
        f"postgresql://postgres@127.0.0.1:{port}/gone",
        f"amqp://guest:guest@127.0.0.1:{port}//",
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_ready_on_postgresql_and_rabbitmq(tmp_path: Path, postgres_url: str) -> None:
    services.require_rabbitmq()
    app = build(tmp_path, postgres_url, services.AMQP_URL)
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.json == {"database": "ok", "broker": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_ready_on_the_embedded_database_and_broker(tmp_path: Path) -> None:
    app = build(tmp_path, sqlite_file(tmp_path), f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    response = app.test_client().get("/readyz")
    assert response.json == {"database": "ok", "broker": "ok"}
    assert response.status_code == 200


def test_not_ready_names_the_broker_that_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    app = build(tmp_path, sqlite_file(tmp_path), f"amqp://guest:guest@127.0.0.1:{port}//")
    capsys.readouterr()
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert time.monotonic() - started < 4
    assert response.status_code == 503
    # Which service, and nothing of why: the reason is for the operator's log.
    assert response.json == {"database": "ok", "broker": "error"}
    assert response.headers["Cache-Control"] == "no-store"
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "not ready" in line]
    assert "broker error: " in line
    assert "refused" in line.lower()


def test_not_ready_names_the_database_that_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(tmp_path, f"postgres://postgres@127.0.0.1:{closed_port()}/gone", "memory://")
    capsys.readouterr()
    started = time.monotonic()
    response = app.test_client().get("/readyz")
    assert time.monotonic() - started < 4
    assert response.status_code == 503
    assert response.json == {"database": "error", "broker": "ok"}
    assert "refused" in capsys.readouterr().err.lower()


def test_not_ready_when_the_sqlite_database_was_never_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(tmp_path, f"sqlite:///{tmp_path / 'never-created.db'}", "memory://")
    capsys.readouterr()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"database": "error", "broker": "ok"}
    assert str(tmp_path) not in response.get_data(as_text=True)  # no path for the public
    assert f"database error: no database file at {tmp_path}/never-created.db" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "never-created.db").exists()


def test_a_check_that_hangs_is_reported_when_the_deadline_passes() -> None:
    release = threading.Event()

    def hangs() -> None:
        release.wait(10)

    def answers() -> None:
        return None

    def fails() -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    started = time.monotonic()
    results = run_checks({"slow": hangs, "fine": answers, "down": fails}, deadline=0.3)
    elapsed = time.monotonic() - started
    release.set()
    assert results == {
        "slow": "error: no answer within 0.3 s",
        "fine": "ok",
        "down": "error: [Errno 111] Connection refused",
    }
    assert elapsed < 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_are_never_cached_even_on_a_conditional_request(
    tmp_path: Path, path: str
) -> None:
    app = build(tmp_path, sqlite_file(tmp_path), "memory://")
    client = app.test_client()
    first = client.get(path)
    again = client.get(path, headers={"If-None-Match": first.headers.get("ETag", "*")})
    assert again.status_code == 200
    assert "ETag" not in first.headers
