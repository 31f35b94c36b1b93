"""While the database is away (a restart, a failover), readers and API clients are told to
come back shortly (503 with Retry-After), not that something broke (500)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from broadsheet import create_app
from broadsheet.extensions import db
from tests.conftest import base_config


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def app_without_database(tmp_path: Path) -> Iterator[Flask]:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/broadsheet"
    app = create_app(base_config(tmp_path, url, PAGE_CACHE_URL="off"))
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production, not raise
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize("path", ["/", "/a-post/", "/tag/flask/", "/feed/"])
def test_a_reader_gets_a_503_page_that_asks_to_come_back(
    app_without_database: Flask, path: str
) -> None:
    response = app_without_database.test_client().get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "Back in a moment" in page
    assert "OperationalError" not in page
    assert "127.0.0.1" not in page


@pytest.mark.parametrize("path", ["/api/v1/posts/", "/api/v1/tags/"])
def test_an_api_client_gets_a_503_problem_with_retry_after(
    app_without_database: Flask, path: str
) -> None:
    response = app_without_database.test_client().get(path)
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    assert response.get_json()["status"] == 503
    assert response.headers["Retry-After"].isdigit()
    assert "127.0.0.1" not in response.get_data(as_text=True)
