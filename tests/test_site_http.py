"""The public site over HTTP: caching, the number of queries per page, errors, overrides."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from psycopg.pq import TransactionStatus
from sqlalchemy import event, text

from broadsheet import create_app
from broadsheet.accounts.models import Role, User
from broadsheet.content.models import PostKind
from broadsheet.extensions import db
from tests.conftest import NOW, base_config
from tests.page_cache_support import another_app

PAGES = ["/", "/tag/flask/", "/author/maya-okafor/", "/2026/", "/2026/05/", "/post-1/"]


# Conditional GETs and Cache-Control -----------------------------------------------------------


@pytest.mark.parametrize("url", PAGES)
def test_an_unchanged_page_is_answered_with_304_and_no_body(
    client: FlaskClient, make_post: Any, url: str
) -> None:
    for number in range(3):
        make_post(f"Post {number}", tags=["Flask"], published_at=NOW - timedelta(days=number + 1))
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert first.headers["Last-Modified"]
    assert "public" in first.headers["Cache-Control"]

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag

    since = client.get(url, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert since.status_code == 304


@pytest.mark.parametrize("url", ["/", "/tag/flask/", "/author/maya-okafor/", "/2026/"])
def test_publishing_a_post_changes_the_etag(client: FlaskClient, make_post: Any, url: str) -> None:
    earlier = NOW - timedelta(days=40)
    make_post("Earlier", tags=["Flask"], now=earlier, published_at=earlier)
    before = client.get(url)
    make_post("Breaking news", tags=["Flask"])
    after = client.get(url, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert b"Breaking news" in after.data
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.headers["Last-Modified"] != before.headers["Last-Modified"]


def test_cache_lifetimes_suit_each_page(client: FlaskClient, make_post: Any) -> None:
    for number in range(12):
        make_post(f"Post {number}", published_at=NOW - timedelta(hours=number))
    make_post("About", kind=PostKind.PAGE)

    def max_age(url: str) -> int:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.cache_control.public
        return int(response.cache_control.max_age or 0)

    front, deep, post, page = (
        max_age("/"),
        max_age("/page/2/"),
        max_age("/post-0/"),
        max_age("/about/"),
    )
    assert 0 < front < deep  # the front page changes with every post; deeper pages less often
    assert front < post <= page  # an edit is rarer than a new post
    missing = client.get("/no-such-post/")
    assert missing.cache_control.max_age == 60


def test_stylesheets_are_cached_for_a_year_under_their_hashed_url(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    start = page.index("/static/site/site.css?v=")
    url = page[start : page.index('"', start)]
    response = client.get(url)
    assert response.status_code == 200
    assert b"prefers-color-scheme: dark" in response.data
    assert response.cache_control.max_age == 365 * 24 * 3600
    response.close()
    stale = client.get("/static/site/site.css?v=old")
    assert stale.cache_control.max_age is None
    stale.close()


# A fixed number of queries per page -----------------------------------------------------------


def test_every_page_costs_the_same_few_queries_however_many_posts_it_shows(
    client: FlaskClient, make_post: Any, make_user: Any, author: User, count_queries: Any
) -> None:
    writers = [make_user(Role.AUTHOR, name=f"Writer {n}") for n in range(3)]

    def add_posts(start: int, count: int) -> None:
        for number in range(start, start + count):
            make_post(
                f"Post {number}",
                tags=["Flask", f"Topic {number % 4}", "Python", "#internal"],
                authors=[author, *writers[: 1 + number % 3]],
                published_at=NOW - timedelta(days=5, hours=number),
            )

    def measure() -> dict[str, int]:
        counts = {}
        for url in PAGES:
            assert client.get(url).status_code == 200, url  # connections warm
            before = len(count_queries)
            assert client.get(url).status_code == 200, url
            counts[url] = len(count_queries) - before
        return counts

    add_posts(0, 3)
    few = measure()
    add_posts(3, 22)  # now every listing shows a full page of ten
    many = measure()
    assert few == many
    assert max(many.values()) <= 8, many


# Errors ---------------------------------------------------------------------------------------


def test_missing_pages_get_a_friendly_404(client: FlaskClient, make_post: Any) -> None:
    make_post("About", kind=PostKind.PAGE)
    for url in ("/no-such-post/", "/tag/no-such-tag/", "/author/nobody/", "/a/b/c/d/"):
        response = client.get(url)
        assert response.status_code == 404, url
        html = response.get_data(as_text=True)
        assert "Page not found" in html
        assert 'href="/"' in html
        assert 'href="/about/"' in html  # a way on
        assert '<meta name="robots" content="noindex">' in html


def test_missing_api_addresses_answer_in_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


@pytest.fixture
def failing_app(database_url: str, tmp_path: Path, _apps: dict[str, Flask]) -> Iterator[Flask]:
    """An app like production (exceptions not propagated) with a view that fails."""
    app = create_app(base_config(tmp_path / "instance", database_url, TESTING=False))

    @app.get("/explode/")
    @app.get("/api/v1/explode")
    def explode() -> str:
        raise RuntimeError("database password is hunter2 at /srv/secret/config.py")

    yield app
    with app.app_context():
        db.engine.dispose()


def test_a_server_error_page_leaks_nothing(failing_app: Flask) -> None:
    client = failing_app.test_client()
    response = client.get("/explode/")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Something went wrong" in html
    for secret in ("hunter2", "RuntimeError", "Traceback", "/srv/secret", "explode"):
        assert secret not in html, secret
    assert response.cache_control.no_store

    api = client.get("/api/v1/explode")
    assert api.status_code == 500
    assert api.mimetype == "application/problem+json"
    assert api.get_json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
    }


def test_templates_under_the_instance_folder_override_the_theme(
    database_url: str, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    (instance / "templates" / "site").mkdir(parents=True)
    (instance / "templates" / "site" / "footer.html").write_text(
        '<footer class="site-footer">Printed on recycled electrons.</footer>'
    )
    app = create_app(base_config(instance, database_url))
    try:
        html = app.test_client().get("/").get_data(as_text=True)
        assert "Printed on recycled electrons." in html
        assert "Published with Broadsheet." not in html
        assert "Latest" in html  # the rest of the theme still applies
    finally:
        with app.app_context():
            db.engine.dispose()


def test_a_readers_post_page_is_one_statement_run_outside_any_transaction(
    app: Flask, database_url: str, tmp_path: Path, make_post: Any, backend: str
) -> None:
    """The post with its tags, its authors and both neighbours is one statement, sent with no
    transaction open: no BEGIN or ROLLBACK around it, so the statement psycopg prepared on
    the connection stays prepared for the next reader (a ROLLBACK would drop it)."""
    if backend != "postgresql":
        pytest.skip("the settings and the menu are kept per generation on PostgreSQL")
    for number in range(3):
        make_post(
            f"Post {number}",
            tags=["Flask", "#internal"],
            published_at=NOW - timedelta(days=number + 1),
        )
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if "stats_" not in statement:  # the views counted, written apart now and then
            seen.append((statement, cursor.connection.info.transaction_status))

    with another_app(app, base_config(tmp_path, database_url, PAGE_CACHE_URL="off")) as plain:
        reader = plain.test_client()
        assert reader.get("/post-1/").status_code == 200  # the settings and the menu, once
        event.listen(db.engine, "before_cursor_execute", record)
        try:
            response = reader.get("/post-1/")
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        with db.engine.connect() as connection:  # staff and writes keep their transaction
            connection.execute(text("SELECT 1"))
            assert connection.connection.dbapi_connection.info.transaction_status == (
                TransactionStatus.INTRANS
            )
    page = response.get_data(as_text=True)
    assert 'href="/post-0/"' in page  # newer
    assert 'href="/post-2/"' in page  # older
    assert 'rel="tag">Flask<' in page
    assert "#internal" not in page
    assert [status for _statement, status in seen] == [TransactionStatus.IDLE], seen
