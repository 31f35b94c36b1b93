"""In-process timings of each public read with the page cache off (100,000 posts, PostgreSQL).

The app runs in this process with ``PAGE_CACHE_URL=off`` (no page is kept;
on PostgreSQL the content generation is still followed, so listing totals,
page starts, the settings and the menu are read once per generation) and
the Flask test client asks for each page many times; the figure is the
``duration_ms`` the request log records for each response (the app's own
time, without the client's).  Each target is the issue's (#18).

    .venv/bin/python bench/inprocess_timing.py [--requests 200] [--profile post]

DATABASE_URL chooses the database (default: broadsheet_bench on 127.0.0.1,
filled by ``bench/run_bench.py``).  ``--profile NAME`` prints a pyinstrument
profile of that page instead.
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
from sqlalchemy import text

from broadsheet import create_app, page_cache
from broadsheet.extensions import db
from broadsheet.logs import REQUEST_LOGGER

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/broadsheet_bench"
WARM_UP = 10
TARGETS_MS = {
    "post": 2.5,
    "standalone page": 2.0,
    "tag archive": 4.0,
    "author archive": 4.0,
    "home": 4.0,
    "home, page 5000": None,
    "feed (RSS)": 8.0,
    "feed (JSON Feed)": 8.0,
    "Content API posts (15)": 4.0,
}


class Durations(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        duration = getattr(record, "duration_ms", None)
        if duration is not None:
            self.values.append(float(duration))


def pages(url: str) -> dict[str, str]:
    """One of each kind of page: the busiest tag and author, a post and a standalone page."""
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:

        def one(sql: str) -> Any:
            row = connection.execute(sql).fetchone()
            if row is None:
                sys.exit(f"nothing found for: {sql}")
            return row[0]

        tag = one(
            "SELECT t.slug FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
            "WHERE pt.published_at IS NOT NULL AND t.name NOT LIKE '#%%' "
            "GROUP BY t.slug ORDER BY count(*) DESC LIMIT 1"
        )
        author = one(
            "SELECT u.slug FROM post_authors pa JOIN users u ON u.id = pa.user_id "
            "WHERE pa.published_at IS NOT NULL GROUP BY u.slug ORDER BY count(*) DESC LIMIT 1"
        )
        post = one(
            "SELECT slug FROM posts WHERE kind = 'post' AND status = 'published' "
            "ORDER BY published_at DESC, id DESC OFFSET 100 LIMIT 1"
        )
        standalone = one("SELECT slug FROM posts WHERE kind = 'page' AND status = 'published'")
    return {
        "post": f"/{post}/",
        "standalone page": f"/{standalone}/",
        "tag archive": f"/tag/{tag}/",
        "author archive": f"/author/{author}/",
        "home": "/",
        "home, page 5000": "/page/5000/",
        "feed (RSS)": "/feed/",
        "feed (JSON Feed)": "/feed.json",
        "Content API posts (15)": "/api/v1/posts/?limit=15",
    }


def timed(
    client: Any, durations: Durations, path: str, requests: int
) -> tuple[list[float], list[float]]:
    """The app's logged durations, and this process's CPU time for each request (which a
    machine busy with other work inflates less: PostgreSQL's share is not in it)."""
    for _ in range(WARM_UP):
        response = client.get(path)
        if response.status_code != 200:
            sys.exit(f"{path} answered {response.status_code}")
    durations.values.clear()
    cpu = []
    for _ in range(requests):
        started = time.thread_time()
        client.get(path)
        cpu.append((time.thread_time() - started) * 1000)
    return list(durations.values), cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--profile", metavar="NAME", help="profile one page (pyinstrument)")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", os.environ.get("DATABASE_URL", DEFAULT_URL))
    instance = tempfile.mkdtemp(prefix="broadsheet-speed-timing-")
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "INSTANCE_PATH": instance,
            "PAGE_CACHE_URL": "off",
            "SITE_URL": "http://127.0.0.1",
        }
    )
    paths = pages(url)
    client = app.test_client()
    if args.profile:
        from pyinstrument import Profiler

        path = paths[args.profile]
        for _ in range(WARM_UP):
            client.get(path)
        with Profiler(interval=0.0001) as profiler:
            for _ in range(args.requests):
                client.get(path)
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    durations = Durations()
    request_log = logging.getLogger(REQUEST_LOGGER)
    request_log.addHandler(durations)
    request_log.propagate = False
    results: dict[str, tuple[float, float]] = {}
    print(f"In-process, page cache off, {args.requests} requests each (the app's own time)")
    print(f"{'read':<26}{'median ms':>10}{'p95 ms':>9}{'CPU ms':>9}{'target ms':>11}")
    for name, path in paths.items():
        logged, cpu = timed(client, durations, path, args.requests)
        values = sorted(logged)
        median, p95 = statistics.median(values), values[round(0.95 * (len(values) - 1))]
        results[name] = (median, p95)
        target = TARGETS_MS[name]
        verdict = "" if target is None else ("  met" if median <= target else "  missed")
        shown = "" if target is None else f"{target:.1f}"
        print(
            f"{name:<26}{median:>10.2f}{p95:>9.2f}{statistics.median(cpu):>9.2f}"
            f"{shown:>11}{verdict}"
        )
    ratio = results["home, page 5000"][0] / results["home"][0]
    print(f"/page/5000/ against page 1 (medians): {ratio:.2f}x (target within 1.5x)")
    print(f"Load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (a shared machine)")
    with app.app_context():
        db.session.execute(text("SELECT 1"))
        db.engine.dispose()
    page_cache.close(app)
    shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
