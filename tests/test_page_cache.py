# Over 400 lines: one story (stored pages are never older than the last change) told on two stores.
"""The page cache: readers get stored pages, and never a page older than the last change.

Every test runs against both stores (the embedded folder under instance/, and
a real Redis at 127.0.0.1:6379 under a key prefix of this run's own) and both
databases.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event
from werkzeug.test import TestResponse

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token
from broadsheet.content import services as content
from broadsheet.content import trash
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.staff_queries import staff_post
from broadsheet.content.tags import rename_tag
from broadsheet.extensions import db, utcnow
from broadsheet.logs import REQUEST_LOGGER
from broadsheet.settings.services import update_site_settings
from tests.conftest import NOW, base_config
from tests.page_cache_support import another_app, eventually, fetch
from tests.staff import PASSWORD, separate_client, sign_in

READS = ["/", "/tag/flask/", "/feed/", "/feed.json", "/api/v1/posts/", "/earlier/"]


# Served from the cache ------------------------------------------------------------------------


@pytest.mark.parametrize("url", READS)
def test_a_second_reader_gets_the_page_from_the_cache_without_a_query(
    reader: FlaskClient, earlier: Post, url: str
) -> None:
    first, _ = fetch(reader, url)
    assert first.status_code == 200
    assert first.headers["X-Cache"] == "MISS"

    second, queries = fetch(reader, url)
    assert second.status_code == 200
    assert second.headers["X-Cache"] == "HIT"
    assert queries == 0
    assert second.data == first.data
    for header in ("Content-Type", "ETag", "Last-Modified", "Cache-Control"):
        assert second.headers.get(header) == first.headers.get(header), header
    assert second.headers["X-Request-ID"] != first.headers["X-Request-ID"]


def test_an_unchanged_cached_page_still_answers_304(reader: FlaskClient, earlier: Post) -> None:
    etag = reader.get("/").headers["ETag"]
    again, queries = fetch(reader, "/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == etag
    assert again.headers["X-Cache"] == "HIT"
    assert queries == 0


def test_the_content_api_keeps_its_cors_and_link_headers_from_the_cache(
    reader: FlaskClient, publish: Any
) -> None:
    for number in range(3):
        publish(f"Post {number}", published_at=NOW - timedelta(hours=number + 1))
    url = "/api/v1/posts/?limit=2&cursor="
    first = reader.get("/api/v1/posts/?limit=2")  # stored from a request with no Origin
    second = reader.get("/api/v1/posts/?limit=2", headers={"Origin": "https://elsewhere.example"})
    assert second.headers["X-Cache"] == "HIT"
    assert second.headers["Access-Control-Allow-Origin"] == "*"
    assert second.headers["Link"] == first.headers["Link"]
    assert url in second.headers["Link"]


def test_a_cached_answer_is_logged_with_its_own_request_id(
    reader: FlaskClient, earlier: Post, caplog: pytest.LogCaptureFixture
) -> None:
    reader.get("/")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=REQUEST_LOGGER):
        response = reader.get("/", headers={"X-Request-ID": "cached-1"})
    assert response.headers["X-Cache"] == "HIT"
    assert response.headers["X-Request-ID"] == "cached-1"
    [line] = [record for record in caplog.records if record.name == REQUEST_LOGGER]
    assert (line.method, line.path, line.status) == ("GET", "/", 200)  # type: ignore[attr-defined]
    assert line.request_id == "cached-1"  # type: ignore[attr-defined]


def _counts(client: FlaskClient, url: str) -> tuple[TestResponse, int]:
    """The response to ``url`` and how many counting statements answering it ran."""
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(url)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return response, sum("count(" in statement.lower() for statement in statements)


@pytest.mark.parametrize(
    ("first", "second"),
    [("/", "/page/2/"), ("/tag/flask/", "/tag/flask/page/2/"), ("/", "/feed/")],
)
def test_a_listing_total_is_counted_once_until_the_content_changes(
    reader: FlaskClient, publish: Any, first: str, second: str
) -> None:
    for number in range(12):
        publish(f"Story {number}", published_at=NOW - timedelta(hours=number + 1))
    response, counted = _counts(reader, first)
    assert response.headers["X-Cache"] == "MISS"
    assert counted == 1
    response, counted = _counts(reader, second)  # another page over the same total
    assert response.headers["X-Cache"] == "MISS"
    assert counted == 0
    if "page/2" in second:
        assert b"Page 2 of 2" in response.data

    for number in range(10):
        publish(f"Later {number}", published_at=NOW - timedelta(minutes=number + 1))
    response, counted = _counts(reader, second)
    assert counted == 1  # a new generation counts afresh
    if "page/2" in second:
        assert b"Page 2 of 3" in response.data


# Every change shows on the very next request --------------------------------------------------


def test_a_post_published_through_the_service_is_on_the_next_page(
    reader: FlaskClient, earlier: Post, author: Any
) -> None:
    draft = content.create_post(
        db.session, title="Fresh news", markdown="Hot.", authors=[author], tags=["Flask"], now=NOW,
        actor=OPERATOR,
    )  # fmt: skip
    db.session.commit()
    for url in READS:
        assert b"Fresh news" not in reader.get(url).data
        assert reader.get(url).headers["X-Cache"] == "HIT"

    content.publish_post(db.session, draft, actor=OPERATOR, now=utcnow())
    db.session.commit()

    for url in READS:
        response = reader.get(url)
        assert b"Fresh news" in response.data, url
        assert response.headers["X-Cache"] == "MISS"
    assert reader.get("/fresh-news/").status_code == 200


def test_a_change_made_by_another_process_reaches_the_pages_this_one_holds(
    site: Flask, reader: FlaskClient, earlier: Post, author: Any, database_url: str
) -> None:
    # Another web process on the same store: same instance folder, or same Redis prefix.
    same_store = base_config(
        Path(site.instance_path),
        database_url,
        PAGE_CACHE_URL=site.config.get("PAGE_CACHE_URL") or "",
        PAGE_CACHE_PREFIX=site.config.get("PAGE_CACHE_PREFIX") or "",
    )
    for url in READS:
        reader.get(url)
        assert reader.get(url).headers["X-Cache"] == "HIT"  # now held in this process too
    with another_app(site, same_store) as other:
        elsewhere = other.test_client()
        for url in READS:
            assert elsewhere.get(url).status_code == 200
        writer = db.session.get(type(author), author.id)  # the other process's own copy
        content.create_post(
            db.session, title="From elsewhere", markdown="Hi.", authors=[writer],
            tags=["Flask"], status=PostStatus.PUBLISHED, now=utcnow(), actor=OPERATOR,
        )  # fmt: skip
        db.session.commit()  # committed in the other process's app
    for url in READS:
        assert eventually(lambda url=url: b"From elsewhere" in reader.get(url).data), url
        assert reader.get(url).headers["X-Cache"] == "HIT"  # and stored again


def test_a_head_request_gets_the_cached_headers_and_no_body(
    reader: FlaskClient, earlier: Post
) -> None:
    first = reader.get("/feed/")
    head, queries = fetch(reader, "/feed/", method="HEAD")
    assert head.status_code == 200
    assert head.headers["X-Cache"] == "HIT"
    assert queries == 0
    assert head.data == b""
    assert head.headers["Content-Length"] == str(len(first.data))
    assert head.headers["Content-Type"] == first.headers["Content-Type"]


def test_a_post_published_through_the_admin_api_is_on_the_next_page(
    site: Flask, reader: FlaskClient, earlier: Post, make_user: Any
) -> None:
    editor = make_user(Role.EDITOR)
    _token, secret = create_token(db.session, editor, label="cache test", now=NOW)
    db.session.commit()
    bearer = {"Authorization": f"Bearer {secret}"}
    staff = site.test_client()
    created = staff.post(
        "/api/v1/admin/posts/", json={"title": "Via the API", "markdown": "x"}, headers=bearer
    )
    assert created.status_code == 201, created.text
    assert b"Via the API" not in reader.get("/api/v1/posts/").data
    assert b"Via the API" not in reader.get("/").data

    post_id = created.get_json()["post"]["id"]
    published = staff.post(f"/api/v1/admin/posts/{post_id}/publish/", json={}, headers=bearer)
    assert published.status_code == 200, published.text

    assert b"Via the API" in reader.get("/api/v1/posts/").data
    assert b"Via the API" in reader.get("/").data


def test_unpublishing_takes_the_post_off_every_page_at_once(
    reader: FlaskClient, earlier: Post, publish: Any
) -> None:
    leaving = publish("Leaving soon", published_at=NOW - timedelta(days=1))
    for url in READS:
        assert b"Leaving soon" in reader.get(url).data
    assert reader.get("/leaving-soon/").status_code == 200

    content.unpublish_post(db.session, leaving, actor=OPERATOR, now=utcnow())
    db.session.commit()

    for url in READS:
        assert b"Leaving soon" not in reader.get(url).data, url
    assert reader.get("/leaving-soon/").status_code == 404


def test_a_post_moved_to_the_trash_leaves_every_cached_page_at_once(
    reader: FlaskClient, earlier: Post, publish: Any
) -> None:
    leaving = publish("Binned soon", published_at=NOW - timedelta(days=1))
    for url in READS:
        assert b"Binned soon" in reader.get(url).data
    assert reader.get("/binned-soon/").status_code == 200

    trash.move_to_trash(
        db.session, leaving, actor=OPERATOR, expected_version=leaving.version, now=utcnow()
    )
    db.session.commit()

    for url in READS:
        assert b"Binned soon" not in reader.get(url).data, url
    assert reader.get("/binned-soon/").status_code == 404


def test_an_edit_shows_on_the_next_request(reader: FlaskClient, earlier: Post) -> None:
    assert b"Earlier" in reader.get("/earlier/").data
    assert reader.get("/").headers["X-Cache"] == "MISS"
    editing = staff_post(db.session, earlier.id, actor=OPERATOR)  # as the editor opens it
    content.update_post(
        db.session,
        editing,
        actor=OPERATOR,
        expected_version=editing.version,
        now=utcnow(),
        title="Earlier, revised",
        markdown="Second thoughts.",
        tags=["Flask"],
        slug="earlier",
    )
    db.session.commit()
    page = reader.get("/earlier/")
    assert b"Second thoughts." in page.data
    assert b"Earlier, revised" in reader.get("/").data


def test_renaming_a_tag_shows_on_the_next_request(reader: FlaskClient, earlier: Post) -> None:
    assert b"Flask" in reader.get("/earlier/").data
    assert reader.get("/tag/flask/").status_code == 200
    tag = staff_post(db.session, earlier.id, actor=OPERATOR).tags[0]
    rename_tag(db.session, tag, "Quart", actor=OPERATOR)
    db.session.commit()
    assert b"Quart" in reader.get("/earlier/").data
    assert reader.get("/tag/flask/").status_code == 404
    assert b"Quart" in reader.get("/tag/quart/").data


def test_new_site_settings_show_on_the_next_request(reader: FlaskClient, earlier: Post) -> None:
    assert b"The Morning Paper" not in reader.get("/").data
    update_site_settings(
        db.session,
        actor=OPERATOR,
        now=utcnow(),
        title="The Morning Paper",
        description="All the news.",
        timezone="UTC",
        posts_per_page=10,
    )
    db.session.commit()
    assert b"The Morning Paper" in reader.get("/").data
    assert b"The Morning Paper" in reader.get("/earlier/").data


def test_a_post_the_scheduler_publishes_is_on_the_next_page(
    site: Flask, reader: FlaskClient, earlier: Post, author: Any
) -> None:
    now = utcnow()
    post = content.create_post(
        db.session, title="Right on time", markdown="Tick.", authors=[author], tags=["Flask"],
        now=now - timedelta(hours=2), actor=OPERATOR,
    )  # fmt: skip
    content.schedule_post(
        db.session,
        post,
        actor=OPERATOR,
        at=now - timedelta(seconds=1),
        now=now - timedelta(hours=2),
    )
    db.session.commit()
    for url in READS:
        assert b"Right on time" not in reader.get(url).data
        assert reader.get(url).headers["X-Cache"] == "HIT"

    # What the beat has a worker run every minute, commit included.
    publish_due_posts = site.extensions["celery"].tasks["broadsheet.publish_due_posts"]
    assert publish_due_posts() == 1

    for url in READS:
        assert b"Right on time" in reader.get(url).data, url


def test_demo_posts_copied_in_by_the_command_show_on_the_next_request(
    client: FlaskClient, runner: Any
) -> None:
    assert runner.invoke(args=["demo", "--posts", "3", "--tags", "3"]).exit_code == 0
    client.get("/")
    before = client.get("/")
    assert before.headers["X-Cache"] == "HIT"
    # Authors and tags exist now: the new posts go in by COPY on PostgreSQL, unseen by the ORM.
    assert runner.invoke(args=["demo", "--posts", "3", "--tags", "3", "--seed", "2"]).exit_code == 0
    after = client.get("/")
    assert after.headers["X-Cache"] == "MISS"
    assert after.data != before.data


def test_a_failed_write_leaves_the_cache_alone(reader: FlaskClient, earlier: Post) -> None:
    reader.get("/")
    earlier.title = "Never saved"
    db.session.flush()
    db.session.rollback()
    response = reader.get("/")
    assert response.headers["X-Cache"] == "HIT"
    assert b"Never saved" not in response.data


# Who is never served from the cache -----------------------------------------------------------


def test_signed_in_staff_always_get_a_freshly_built_page(
    site: Flask, earlier: Post, make_user: Any
) -> None:
    make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    staff = separate_client(site)
    sign_in(staff, "ed@example.com")
    for url in ["/", "/earlier/", "/api/v1/posts/"]:
        for _ in range(2):
            response, queries = fetch(staff, url)
            assert response.status_code == 200
            assert "X-Cache" not in response.headers
            assert queries > 0
    admin, _ = fetch(staff, "/admin/")
    assert admin.status_code == 200
    assert "X-Cache" not in admin.headers


def test_api_calls_with_a_token_are_never_cached(reader: FlaskClient, earlier: Post) -> None:
    for _ in range(2):
        response = reader.get("/api/v1/posts/", headers={"Authorization": "Bearer bs_whatever"})
        assert response.status_code == 200
        assert "X-Cache" not in response.headers


def test_missing_pages_are_not_kept(reader: FlaskClient, earlier: Post) -> None:
    for _ in range(2):
        response, queries = fetch(reader, "/no-such-post/")
        assert response.status_code == 404
        assert response.headers["X-Cache"] == "MISS"
        assert queries > 0


# When the store fails -------------------------------------------------------------------------


def test_pages_are_served_uncached_while_the_store_is_down(
    app: Flask, database_url: str, tmp_path: Any, make_post: Any
) -> None:
    make_post("Earlier")
    # Nothing listens on port 1: every store call fails at once.
    down = base_config(tmp_path, database_url, PAGE_CACHE_URL="redis://127.0.0.1:1/0")
    with another_app(app, down) as broken:
        client = broken.test_client()
        for _ in range(2):
            response = client.get("/")
            assert response.status_code == 200
            assert b"Earlier" in response.data
            assert "X-Cache" not in response.headers


def test_the_cache_can_be_switched_off(
    app: Flask, database_url: str, tmp_path: Any, make_post: Any
) -> None:
    make_post("Earlier")
    with another_app(app, base_config(tmp_path, database_url, PAGE_CACHE_URL="off")) as plain:
        response = plain.test_client().get("/")
        assert response.status_code == 200
        assert "X-Cache" not in response.headers
        assert not (tmp_path / "page-cache").exists()
