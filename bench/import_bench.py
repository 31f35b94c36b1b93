"""How fast a WordPress export of 20,000 posts imports on PostgreSQL, and with how much memory.

Generates WXR files of 10,000 and 20,000 posts, then imports each into a fresh
PostgreSQL database (``broadsheet_porting_bench``, dropped at the end) in a
child process, as ``broadsheet import`` does (the dry-run summary, then the
job, a commit per batch), and prints the child's wall time and peak memory
(its maximum resident set; and the largest of its pool processes', which
convert and render posts, mostly pages shared with it).  Targets: 20,000
posts in at most 60 s, at most 300 MB, and memory flat when the file doubles.

The machine is shared and noisy, so each figure is also given as a ratio to
a baseline measured in the same run: reading the same file with lxml's
iterparse and nothing else (the floor of any streaming import), and the
in-process time of the hello app's one request (bench/hello_app.py).

    .venv/bin/python bench/import_bench.py [--posts 10000 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from lxml import etree

ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "broadsheet_porting_bench"
TARGET_SECONDS, TARGET_MB = 60.0, 300.0
BODY = "\n\n".join(
    f"<p>Paragraph {n} with <em>some</em> words about gardens, <strong>roses</strong> and "
    "<a href='https://example.com/'>a link</a>, long enough to be a real post.</p>"
    for n in range(6)
)


def write_wxr(path: Path, posts: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:wp="http://wordpress.org/export/1.2/"><channel><title>Bench</title>'
            "<wp:wxr_version>1.2</wp:wxr_version>"
            "<wp:base_site_url>https://bench.example.com</wp:base_site_url>\n"
        )
        for n in range(5):
            out.write(
                f"<wp:author><wp:author_login>w{n}</wp:author_login><wp:author_email>"
                f"w{n}@bench.example.com</wp:author_email><wp:author_display_name>Writer {n}"
                "</wp:author_display_name></wp:author>\n"
            )
        for n in range(50):
            out.write(
                f"<wp:category><wp:term_id>{n}</wp:term_id><wp:category_nicename>topic-{n}"
                f"</wp:category_nicename><wp:cat_name>Topic {n}</wp:cat_name></wp:category>\n"
            )
        for n in range(1, posts + 1):
            out.write(
                f"<item><title>Bench post {n}</title>"
                f"<link>https://bench.example.com/2020/{1 + n % 12:02d}/bench-post-{n}/</link>"
                f"<dc:creator>w{n % 5}</dc:creator><content:encoded><![CDATA[{BODY}]]>"
                f"</content:encoded><excerpt:encoded><![CDATA[]]></excerpt:encoded>"
                f"<wp:post_id>{n}</wp:post_id>"
                f"<wp:post_date_gmt>2020-{1 + n % 12:02d}-{1 + n % 28:02d} 10:00:00"
                f"</wp:post_date_gmt><wp:post_name>bench-post-{n}</wp:post_name>"
                "<wp:status>publish</wp:status><wp:post_type>post</wp:post_type>"
                f'<category domain="category" nicename="topic-{n % 50}">Topic {n % 50}</category>'
                f'<category domain="category" nicename="topic-{(n * 7) % 50}">x</category>'
                "</item>\n"
            )
        out.write("</channel></rss>\n")


def parse_only(path: Path) -> float:
    started = time.perf_counter()
    for _event, element in etree.iterparse(str(path), events=("end",), tag="item"):
        element.clear()
    return time.perf_counter() - started


def hello_seconds(requests: int = 2000) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from hello_app import app

    client = app.test_client()
    started = time.perf_counter()
    for _ in range(requests):
        client.get("/")
    return (time.perf_counter() - started) / requests


def child(path: Path, url: str) -> None:
    """Import ``path`` into ``url`` as the command line does; print timings and peak memory."""
    os.environ.update({"DATABASE_URL": url, "SECRET_KEY": "bench-secret-0123456789abcdef",
                       "CELERY_BROKER_URL": "memory://"})  # fmt: skip
    from broadsheet import create_app
    from broadsheet.accounts.models import Role
    from broadsheet.accounts.permissions import OPERATOR
    from broadsheet.accounts.services import create_user
    from broadsheet.cli import upgrade_schema
    from broadsheet.extensions import db, utcnow
    from broadsheet.porting import services as porting

    app = create_app({"INSTANCE_PATH": tempfile.mkdtemp(prefix="porting-bench-")})
    with app.app_context():
        upgrade_schema()
        create_user(db.session, email="owner@bench.example.com", role=Role.OWNER,
                    now=utcnow(), actor=OPERATOR)  # fmt: skip
        db.session.commit()
        started = time.perf_counter()
        with path.open("rb") as upload:
            job = porting.start_import(
                db.session, actor=OPERATOR, now=utcnow(), upload=upload,
                filename=path.name, folder=Path(app.instance_path),
            )  # fmt: skip
        db.session.commit()
        summary = time.perf_counter() - started
        for _done in porting.run_import(db.session, job, actor=OPERATOR, now=utcnow()):
            db.session.commit()
        total = time.perf_counter() - started
        created = (job.report or {}).get("created", {})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The largest of the processes that converted and rendered posts (porting.prepare).
    pool_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"summary_s": summary, "total_s": total, "peak_mb": peak_mb,
                      "pool_mb": pool_mb, "created": created}))  # fmt: skip


def recreate(drop_only: bool = False) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if not drop_only:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--child", nargs=2, metavar=("FILE", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    hello = hello_seconds()
    print("Machine shared with other work: compare the ratios, not the seconds.")
    print(f"baseline: hello app, in-process: {hello * 1e6:.0f} µs a request")
    results = []
    with tempfile.TemporaryDirectory(prefix="porting-bench-") as folder:
        try:
            for posts in args.posts:
                path = Path(folder) / f"wxr-{posts}.xml"
                write_wxr(path, posts)
                parse = parse_only(path)
                url = recreate()
                finished = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), url],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                figures = json.loads(finished.stdout.strip().splitlines()[-1])
                size_mb = path.stat().st_size / 1e6
                results.append((posts, figures))
                print(
                    f"{posts:>6} posts ({size_mb:.0f} MB): import {figures['total_s']:.1f} s "
                    f"(summary {figures['summary_s']:.1f} s) = {figures['total_s'] / parse:.0f}x "
                    f"a parse-only pass ({parse:.2f} s), "
                    f"{figures['total_s'] / posts / hello:.1f} hello requests a post; "
                    f"peak memory {figures['peak_mb']:.0f} MB (a pool process: "
                    f"{figures['pool_mb']:.0f} MB); created {figures['created']}"
                )
        finally:
            recreate(drop_only=True)
    if len(results) >= 2:
        (small, first), (large, second) = results[0], results[-1]
        growth = second["peak_mb"] / first["peak_mb"]
        print(f"memory at {large / small:.0f}x the posts: {growth:.2f}x the peak (flat is 1.0)")
    for posts, figures in results:
        if posts >= 20_000:
            ok = figures["total_s"] <= TARGET_SECONDS and figures["peak_mb"] <= TARGET_MB
            print(f"target ({TARGET_SECONDS:.0f} s, {TARGET_MB:.0f} MB) for {posts}: "
                  f"{'met' if ok else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
