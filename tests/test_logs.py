"""Logs an operator reads: JSON lines in production, readable lines at a terminal."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for

from broadsheet import create_app
from broadsheet.logs import mask_tokens
from tests.conftest import base_config


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    """Each app installs its log handler on the root logger; put back the one before."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def build(tmp_path: Path, **settings: Any) -> Flask:
    database = tmp_path / "site.db"
    sqlite3.connect(database).close()
    app = create_app(
        base_config(
            tmp_path / "instance", f"sqlite:///{database}", PROPAGATE_EXCEPTIONS=False, **settings
        )
    )

    @app.get("/test/explain")
    def explain() -> str:
        logging.getLogger("broadsheet.test").warning("explaining %s", "something")
        return "explained"

    @app.get("/test/fail")
    def fail() -> str:
        raise RuntimeError("the disk is on fire")

    return app


@pytest.fixture
def production(tmp_path: Path) -> Flask:
    return build(tmp_path, BROADSHEET_ENV="production")


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_production_logs_one_json_line_per_request_with_what_was_asked(
    production: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    production.test_client().get("/healthz?probe=1", headers={"X-Request-ID": "req-42"})
    entries = json_lines(capsys.readouterr().err)
    (line,) = [e for e in entries if e["logger"] == "broadsheet.request"]
    assert line["level"] == "INFO"
    assert line["request_id"] == "req-42"
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] >= 0
    logged_at = datetime.fromisoformat(line["time"])
    assert logged_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - logged_at).total_seconds()) < 60
    assert line["message"] == f"GET /healthz 200 {line['duration_ms']} ms"


def test_every_record_made_during_a_request_carries_its_id(
    production: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    production.test_client().get("/test/explain", headers={"X-Request-ID": "abc-123"})
    entries = json_lines(capsys.readouterr().err)
    assert [(e["logger"], e["request_id"]) for e in entries] == [
        ("broadsheet.test", "abc-123"),
        ("broadsheet.request", "abc-123"),
    ]
    assert entries[0]["message"] == "explaining something"


def test_an_unhandled_error_is_one_json_line_with_its_traceback_and_a_500(
    production: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    response = production.test_client().get("/test/fail", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "boom-1"
    entries = json_lines(capsys.readouterr().err)
    error = next(e for e in entries if e["level"] == "ERROR")
    assert error["request_id"] == "boom-1"
    assert "RuntimeError: the disk is on fire" in error["exception"]
    assert entries[-1]["status"] == 500


def test_the_request_id_comes_back_in_the_response(production: Flask) -> None:
    response = production.test_client().get("/healthz", headers={"X-Request-ID": "7f3a-b2"})
    assert response.headers["X-Request-ID"] == "7f3a-b2"


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "x" * 201,
        "two words",
        "line\x0bbreak",
        "caf\u00e9",
    ],
    ids=["missing", "empty", "too-long", "space", "control", "non-ascii"],
)
def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(
    production: Flask, capsys: pytest.CaptureFixture[str], given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    capsys.readouterr()
    response = production.test_client().get("/healthz", headers=headers)
    fresh = response.headers["X-Request-ID"]
    assert fresh != given
    assert len(fresh) == 32
    int(fresh, 16)
    (line,) = json_lines(capsys.readouterr().err)
    assert line["request_id"] == fresh


def test_a_request_id_of_two_hundred_characters_is_kept(production: Flask) -> None:
    given = "a" * 200
    response = production.test_client().get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given


def test_each_request_gets_an_id_of_its_own(production: Flask) -> None:
    client = production.test_client()
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_development_logs_readable_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(tmp_path)
    capsys.readouterr()
    app.test_client().get("/test/explain", headers={"X-Request-ID": "dev-1"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert "WARNING broadsheet.test [dev-1] explaining something" in lines[0]
    assert "INFO    broadsheet.request [dev-1] GET /test/explain 200 " in lines[1]
    assert lines[1].endswith(" ms")
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[1])


TOKEN = "eyJzIjo0Mn0.ZabcDE.s3cr3t-Sig_nature"


def test_a_token_in_a_path_never_reaches_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from broadsheet.cli import upgrade_schema

    app = build(tmp_path, BROADSHEET_ENV="production")
    with app.app_context():
        upgrade_schema()

    @app.get("/test/tell")
    def tell() -> str:  # anything else that logs a path is masked too
        logging.getLogger("broadsheet.test").warning("opened /preferences/%s/", TOKEN)
        return "told"

    capsys.readouterr()
    client = app.test_client()
    assert client.get(f"/unsubscribe/{TOKEN}").status_code < 500
    client.get("/test/tell")
    err = capsys.readouterr().err
    assert TOKEN not in err
    assert "s3cr3t" not in err
    paths = [e["path"] for e in json_lines(err) if e["logger"] == "broadsheet.request"]
    assert paths == ["/unsubscribe/***", "/test/tell"]
    assert "opened /preferences/***/" in err


def test_every_route_with_a_token_in_its_path_is_masked(tmp_path: Path) -> None:
    app = build(tmp_path)
    routes = [rule for rule in app.url_map.iter_rules() if "token" in rule.arguments]
    assert len(routes) >= 4  # confirm, unsubscribe, preferences, password reset
    with app.test_request_context():
        for rule in routes:
            path = url_for(rule.endpoint, token=TOKEN)
            assert TOKEN not in mask_tokens(f"GET {path} 200"), rule.rule


def test_the_readable_format_masks_tokens_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build(tmp_path)
    capsys.readouterr()
    app.test_client().get(f"/admin/password-reset/{TOKEN}")
    err = capsys.readouterr().err
    assert "/admin/password-reset/***" in err
    assert TOKEN not in err
