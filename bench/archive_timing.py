"""How long the busiest tag archive takes to render on a site with 100,000 posts.

Fills a PostgreSQL database with ``broadsheet demo --posts 100000 --tags 1000``
the first time (about half a minute), then, in-process with the Flask test
client, renders the first and the 500th page of the most popular tag's
archive (and the home page and a post) many times, and prints the median and
95th percentile of the app's own timing: the ``duration_ms`` that the request
log records for every response.

    .venv/bin/python bench/archive_timing.py [--requests 50]

DATABASE_URL chooses the database; by default a database named
broadsheet_bench on 127.0.0.1, created when missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import psycopg
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from broadsheet import create_app
from broadsheet.cli import upgrade_schema
from broadsheet.content.models import Post, PostTag, Tag
from broadsheet.extensions import db
from broadsheet.logs import REQUEST_LOGGER

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/broadsheet_bench"
POSTS, TAGS = 100_000, 1000
WARM_UP = 5


class Durations(logging.Handler):
    """Keeps the duration the app logged for each request."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        duration = getattr(record, "duration_ms", None)
        if duration is not None:
            self.values.append(float(duration))


def ensure_database(url: str) -> None:
    parts = make_url(url.replace("postgresql+psycopg", "postgresql"))
    admin = parts.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parts.database,)
        ).fetchone()
        if not found:
            connection.execute(f'CREATE DATABASE "{parts.database}"')
            print(f"Created database {parts.database}.")


def fill(app: Any) -> None:
    with app.app_context():
        upgrade_schema()
        posts = db.session.scalar(select(func.count()).select_from(Post)) or 0
        db.session.remove()
    if posts >= POSTS:
        print(f"Reusing {posts:,} posts already in the database.")
        return
    print(f"Filling with broadsheet demo --posts {POSTS} --tags {TAGS} …", flush=True)
    started = time.perf_counter()
    result = app.test_cli_runner().invoke(args=["demo", "--posts", str(POSTS), "--tags", str(TAGS)])
    if result.exit_code != 0:
        sys.exit(result.output)
    print(result.output.strip(), f"({time.perf_counter() - started:.0f} s with the CLI)")
    with app.app_context(), db.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def busiest_tag(app: Any) -> tuple[str, int, str]:
    """The public tag on the most public posts, its count, and the slug of some public post."""
    with app.app_context():
        row = db.session.execute(
            select(Tag.slug, func.count())
            .join(PostTag, PostTag.tag_id == Tag.id)
            .where(PostTag.published_at.is_not(None), ~Tag.is_internal)
            .group_by(Tag.slug)
            .order_by(func.count().desc())
            .limit(1)
        ).one()
        some_post = db.session.scalar(
            select(Post.slug).where(Post.status == "published").order_by(Post.id).limit(1)
        )
        db.session.remove()
    return row[0], row[1], str(some_post)


def time_url(client: Any, durations: Durations, url: str, requests: int) -> list[float]:
    for _ in range(WARM_UP):
        status = client.get(url).status_code
        if status != 200:
            sys.exit(f"{url} answered {status}; is the schema of this database current?")
    durations.values.clear()
    for _ in range(requests):
        response = client.get(url)
        assert response.status_code == 200, url
    return list(durations.values)


def summary(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    ensure_database(url)
    instance = tempfile.mkdtemp(prefix="broadsheet-bench-")
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench-secret-key-0123456789",
            "INSTANCE_PATH": instance,
        }
    )
    fill(app)
    slug, count, post = busiest_tag(app)
    per_page = int(app.config["POSTS_PER_PAGE"])
    print(f"Busiest tag: {slug} with {count:,} public posts ({per_page} a page).")

    durations = Durations()
    request_log = logging.getLogger(REQUEST_LOGGER)
    request_log.addHandler(durations)
    request_log.propagate = False  # quiet: the figures are printed below
    client = app.test_client()
    pages = {
        "tag archive, page 1": f"/tag/{slug}/",
        "tag archive, page 500": f"/tag/{slug}/page/500/",
        "home": "/",
        "home, page 500": "/page/500/",
        "a post": f"/{post}/",
    }
    results = {}
    print(f"\n{'page':<24}{'median ms':>10}{'p95 ms':>10}   ({args.requests} requests each)")
    for name, path in pages.items():
        results[name] = summary(time_url(client, durations, path, args.requests))
        print(f"{name:<24}{results[name][0]:>10.1f}{results[name][1]:>10.1f}")
    first, deep = results["tag archive, page 1"][0], results["tag archive, page 500"][0]
    print(f"\nTag archive page 500 / page 1 (medians): {deep / first:.2f}")
    with app.app_context():
        db.engine.dispose()
    shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
