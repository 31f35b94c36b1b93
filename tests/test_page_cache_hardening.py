"""The page cache against abuse: keys that cannot be flooded, a Host that must be the site's,
cookies that must be real to skip it, entries that are data and sealed, and invalidation that
reaches every process sharing the database, whatever their instance folders."""

from __future__ import annotations

import logging
import pickle
import struct
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from broadsheet import create_app, page_cache
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_user
from broadsheet.api import schemas
from broadsheet.content import services as content
from broadsheet.content.models import PostStatus
from broadsheet.extensions import db, utcnow
from broadsheet.page_cache import QUERY_PARAMETERS, Entry, store_key
from broadsheet.page_cache.entries import Sealer
from broadsheet.page_cache.notify import APPLICATION_NAME, NotifiedGeneration
from broadsheet.page_cache.stores import PageFolder, embedded_pages
from tests.conftest import NOW, base_config
from tests.page_cache_support import eventually, fetch, keep_tasks_on
from tests.staff import PASSWORD, separate_client, sign_in

# Keys: the path and the parameters the endpoint reads ----------------------------------------


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("/", "/?x=1"),
        ("/", "/?utm_source=mail&x=2"),
        ("/earlier/", "/earlier/?page=7"),
        ("/feed/", "/feed/?nocache=1"),
        ("/api/v1/posts/?limit=2", "/api/v1/posts/?limit=2&x=3"),
        ("/api/v1/posts/?limit=2&order=oldest", "/api/v1/posts/?order=oldest&limit=2"),
        ("/api/v1/tags/?page=1", "/api/v1/tags/?page=1&whatever="),
    ],
)
def test_parameters_no_view_reads_make_no_new_entry(
    reader: FlaskClient, earlier: Any, stored: str, asked: str
) -> None:
    first = reader.get(stored)
    assert first.headers["X-Cache"] == "MISS"
    for _ in range(3):
        again, queries = fetch(reader, asked)
        assert again.headers["X-Cache"] == "HIT", asked
        assert queries == 0
        assert again.data == first.data


def test_parameters_a_view_reads_are_pages_of_their_own(reader: FlaskClient, publish: Any) -> None:
    for number in range(3):
        publish(f"Post {number}", published_at=NOW - timedelta(hours=number + 1))
    two = reader.get("/api/v1/posts/?limit=2")
    one = reader.get("/api/v1/posts/?limit=1")
    assert one.headers["X-Cache"] == "MISS"
    assert len(one.get_json()["posts"]) == 1
    assert len(two.get_json()["posts"]) == 2
    # The next link names only what the view reads, whatever else the first reader sent.
    odd = reader.get("/api/v1/posts/?limit=1&x=evil")
    assert odd.headers["X-Cache"] == "HIT"
    assert "evil" not in odd.headers["Link"]


def test_the_content_apis_documented_parameters_are_all_in_the_key() -> None:
    assert QUERY_PARAMETERS["content_api.list_posts"] == set(schemas.PostArgsSchema().fields)
    for endpoint in ("content_api.list_tags", "content_api.list_authors"):
        assert QUERY_PARAMETERS[endpoint] == set(schemas.PageArgsSchema().fields)


# The Host --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/earlier/", "/api/v1/posts/", "/admin/", "/no-such/"])
def test_a_request_for_another_host_gets_400_and_never_a_stored_page(
    reader: FlaskClient, earlier: Any, url: str
) -> None:
    reader.get(url)
    reader.get(url)
    response = reader.get(url, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert "X-Cache" not in response.headers


def test_the_sites_own_host_is_served_and_stored_as_the_site_url(
    reader: FlaskClient, publish: Any
) -> None:
    for number in range(3):
        publish(f"Post {number}", published_at=NOW - timedelta(hours=number + 1))
    # SITE_URL is https://blog.example.com: another port makes no page of its own.
    odd = reader.get("/api/v1/posts/?limit=1", headers={"Host": "blog.example.com:6666"})
    assert odd.status_code == 200
    assert odd.headers["Link"].startswith("<https://blog.example.com/api/v1/posts/?")
    plain = reader.get("/api/v1/posts/?limit=1", headers={"Host": "blog.example.com"})
    assert plain.headers["X-Cache"] == "HIT"
    assert plain.headers["Link"] == odd.headers["Link"]


# Cookies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("session", "x"),
        ("session", "eyJfdXNlcl9pZCI6IjEifQ.Zm9yZ2Vk.c2lnbmF0dXJl"),  # {"_user_id": "1"}, unsigned
        ("remember_token", "1|forged"),
    ],
)
def test_a_cookie_that_is_no_live_staff_session_is_served_from_the_cache(
    site: Flask, earlier: Any, name: str, value: str
) -> None:
    site.test_client().get("/")
    visitor = site.test_client()
    visitor.set_cookie(name, value)
    response, queries = fetch(visitor, "/")
    assert response.headers["X-Cache"] == "HIT"
    assert queries == 0


def test_a_signed_session_without_a_user_is_served_from_the_cache(
    site: Flask, earlier: Any
) -> None:
    visitor = separate_client(site)
    visitor.get("/admin/login")  # the sign-in form puts a CSRF token in a signed session
    assert visitor.get_cookie(site.config["SESSION_COOKIE_NAME"]) is not None
    visitor.get("/")
    response, queries = fetch(visitor, "/")
    assert response.headers["X-Cache"] == "HIT"
    assert queries == 0


def test_a_real_staff_session_still_gets_fresh_pages(
    site: Flask, earlier: Any, make_user: Any
) -> None:
    make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    staff = separate_client(site)
    sign_in(staff, "ed@example.com")
    site.test_client().get("/")
    response, queries = fetch(staff, "/")
    assert "X-Cache" not in response.headers
    assert queries > 0


# Entries are data, sealed ----------------------------------------------------------------------


class Payload:
    """A pickle that creates a file when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def _write_raw(site: Flask, key: str, data: bytes) -> None:
    """Write ``data`` under ``key`` straight into the store, as an intruder would."""
    store = page_cache.page_cache(site).store  # type: ignore[union-attr]
    if site.config.get("PAGE_CACHE_URL"):
        client = redis.Redis.from_url(site.config["PAGE_CACHE_URL"])
        client.set(f"{site.config['PAGE_CACHE_PREFIX']}{key}", data)
        client.close()
    else:
        Path(store._get_filename(key)).write_bytes(struct.pack("I", 0) + data)  # type: ignore[attr-defined]


@pytest.mark.parametrize("prefix", [b"", b"!", b"b"])
def test_a_pickle_in_the_store_is_never_loaded(
    site: Flask, reader: FlaskClient, earlier: Any, tmp_path: Path, prefix: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    reader.get("/")
    marker = tmp_path / "ran"
    _write_raw(site, store_key("/?"), prefix + pickle.dumps(Payload(marker)))
    _forget_copies(site)
    with caplog.at_level(logging.WARNING, logger="broadsheet.page_cache"):
        response = reader.get("/")
    assert response.status_code == 200
    assert response.headers["X-Cache"] == "MISS"
    assert b"Earlier" in response.data
    assert not marker.exists()
    assert any("format" in r.getMessage() for r in caplog.records)
    assert reader.get("/").headers["X-Cache"] == "HIT"  # the miss stored a sound page again


def test_an_entry_with_a_wrong_mac_is_a_miss_and_logged(
    site: Flask, reader: FlaskClient, earlier: Any, caplog: pytest.LogCaptureFixture
) -> None:
    reader.get("/")
    cache = page_cache.page_cache(site)
    assert cache is not None
    key = store_key("/?")
    forged = Entry(cache.current() or "", 200, [("Content-Type", "text/html")], b"defaced")
    sealed = Sealer("a-guessed-secret-key").seal_entry(key, forged)
    cache.store.set(key, sealed)
    _forget_copies(site)
    with caplog.at_level(logging.WARNING, logger="broadsheet.page_cache"):
        response = reader.get("/")
    assert response.headers["X-Cache"] == "MISS"
    assert b"defaced" not in response.data
    assert any("failed its integrity check" in r.getMessage() for r in caplog.records)


def test_a_sound_entry_moved_to_another_key_is_a_miss(
    site: Flask, reader: FlaskClient, earlier: Any
) -> None:
    post_page = reader.get("/earlier/").data
    cache = page_cache.page_cache(site)
    assert cache is not None
    cache.store.set(store_key("/?"), cache.store.get(store_key("/earlier/?")))
    _forget_copies(site)
    response = reader.get("/")
    assert response.headers["X-Cache"] == "MISS"
    assert response.data != post_page


def _forget_copies(site: Flask) -> None:
    """Drop this process's own copies, so the next lookup reads the store."""
    cache = page_cache.page_cache(site)
    assert cache is not None
    cache.recent.entries.clear()
    cache.recent.used = 0


# Every process sharing the database, whatever its instance folder ----------------------------


@pytest.fixture
def web_and_worker(
    app: Flask, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Flask, Flask]]:
    """Two apps over one database with instance folders of their own, as a web dyno and a
    worker dyno have (the embedded store, the default)."""
    web = create_app(base_config(tmp_path_factory.mktemp("web"), database_url))
    worker = create_app(base_config(tmp_path_factory.mktemp("worker"), database_url))
    keep_tasks_on(app)
    try:
        yield web, worker
    finally:
        for other in (web, worker):
            page_cache.close(other)
            with other.app_context():
                db.session.remove()
                db.engine.dispose()


def _author(worker: Flask) -> int:
    with worker.app_context():
        user = create_user(
            db.session, email="writer@example.com", role=Role.AUTHOR, name="Writer", now=NOW,
            actor=OPERATOR,
        )  # fmt: skip
        db.session.commit()
        return user.id


def test_a_change_committed_through_another_instance_is_never_served_stale(
    web_and_worker: tuple[Flask, Flask],
) -> None:
    web, worker = web_and_worker
    author = _author(worker)
    reader = web.test_client()
    reader.get("/")
    assert reader.get("/").headers["X-Cache"] == "HIT"
    with worker.app_context():
        content.create_post(
            db.session, title="Published elsewhere", markdown="x.",
            authors=[db.session.get(User, author)], tags=[], status=PostStatus.PUBLISHED,
            now=utcnow(), actor=OPERATOR,
        )  # fmt: skip
        db.session.commit()
    assert eventually(lambda: b"Published elsewhere" in reader.get("/").data)


def test_the_worker_instances_scheduled_publish_reaches_the_web_instance(
    web_and_worker: tuple[Flask, Flask],
) -> None:
    web, worker = web_and_worker
    author = _author(worker)
    with worker.app_context():
        now = utcnow()
        post = content.create_post(
            db.session, title="Right on schedule", markdown="Tick.",
            authors=[db.session.get(User, author)], tags=[], now=now - timedelta(hours=1),
            actor=OPERATOR,
        )  # fmt: skip
        content.schedule_post(
            db.session, post, actor=OPERATOR,
            at=now - timedelta(seconds=1), now=now - timedelta(hours=1),
        )  # fmt: skip
        db.session.commit()
    reader = web.test_client()
    reader.get("/")
    assert reader.get("/").headers["X-Cache"] == "HIT"
    with worker.app_context():
        task = worker.extensions["celery"].tasks["broadsheet.publish_due_posts"]
        assert task.run() == 1
    assert eventually(lambda: b"Right on schedule" in reader.get("/").data)


def test_a_lost_listener_serves_uncached_and_misses_nothing(
    web_and_worker: tuple[Flask, Flask], database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the listener is PostgreSQL's")
    web, worker = web_and_worker
    author = _author(worker)
    reader = web.test_client()
    reader.get("/")
    assert reader.get("/").headers["X-Cache"] == "HIT"
    generation = page_cache.page_cache(web).generation  # type: ignore[union-attr]
    assert isinstance(generation, NotifiedGeneration)
    with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (APPLICATION_NAME,),
        )
    assert eventually(lambda: not generation.listening)
    with worker.app_context():  # announced while the web's listener is away
        content.create_post(
            db.session, title="While away", markdown="x.",
            authors=[db.session.get(User, author)], tags=[], status=PostStatus.PUBLISHED,
            now=utcnow(), actor=OPERATOR,
        )  # fmt: skip
        db.session.commit()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # never the old page, listening again or not
        assert b"While away" in reader.get("/").data
        time.sleep(0.05)
    assert generation.listening
    assert reader.get("/").headers["X-Cache"] == "HIT"


def test_sqlite_keeps_the_token_beside_the_database(
    web_and_worker: tuple[Flask, Flask], database_url: str
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's token file")
    web, _ = web_and_worker
    database = Path(database_url.removeprefix("sqlite:///"))
    assert (database.parent / f"{database.name}-page-cache" / "generation").exists()
    assert not (Path(web.instance_path) / "page-cache" / "generation").exists()


def test_the_embedded_store_keeps_its_folder_within_bounds(tmp_path: Path) -> None:
    """A crawler walking a long tail fills the folder; it is pruned back, and keeps the
    pages it was given last."""
    store = embedded_pages(tmp_path, max_entries=50)
    for number in range(1000):
        store.set(f"page {number}", f"body {number}".encode(), 3600)
    files = list((tmp_path / "pages").iterdir())
    assert len(files) <= 50 + PageFolder.PRUNE_EVERY
    assert store.get("page 999") == b"body 999"
    assert not any(name.name.startswith("__wz_cache") for name in files)  # no count file
