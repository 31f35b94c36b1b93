"""Stats: what counting page views costs the cached reads, and how fast the dashboard draws.

On PostgreSQL (a database of its own, ``broadsheet_stats_bench`` on
127.0.0.1, created when missing; 10,000 demo posts, and a year of daily
stats rows written straight into it), this:

1. serves Broadsheet under gunicorn (bench/run_bench.py's configuration and
   helpers: 2 worker processes of 4 threads, production mode, 127.0.0.1)
   beside ``bench/hello_app.py``, and drives a cached post page with wrk
   sending a browser's User-Agent, so that every request is counted; hello
   is measured before and after each run, and the ratio is to their mean
   (target: at least 70%).  The same page with counting off alternates with
   it (``--rounds``), and the views the counter wrote are checked against
   wrk's request count;
2. times the admin dashboard (the whole request: queries and the page) over
   7, 30 and 90 days, in this process with the test client, as the owner
   (target: at most 150 ms, median of a few runs).

    .venv/bin/python bench/stats_bench.py [--duration 5] [--fresh]

The year of stats: each day, about a fifth of the posts (a different fifth
each day) are read, each from one of 20 referring domains, and the home page;
about 730,000 daily rows.  Every server is stopped on the way out and every
load run is bounded in time.  The machine may be shared: only the ratios
measured in the same run mean anything.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import (
    WARM_UP_SECONDS,
    Run,
    _bad,
    _ms,
    broadsheet,
    ensure_database,
    ensure_wrk,
    gunicorn,
    server_env,
)

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/broadsheet_stats_bench"
POSTS, TAGS, SUBSCRIBERS = 10_000, 200, 2_000
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
OWNER = "owner@stats-bench.example"
PASSWORD = "stats-bench-owner"  # noqa: S105 (a throwaway account in a throwaway database)
DASHBOARD_TARGET_MS = 150.0
YEAR_OF_STATS = """
INSERT INTO stats_days (day, path, post_id, referrer, source, views, visitors)
SELECT d::date, '/' || p.slug || '/', p.id, 'site' || (p.id % 20) || '.example', '',
       1 + (p.id * 7 + extract(doy FROM d)::int) % 50, 1 + (p.id + extract(doy FROM d)::int) % 30
FROM generate_series(current_date - 364, current_date, interval '1 day') AS d
JOIN posts AS p ON (p.id + extract(doy FROM d)::int) % 5 = 0
UNION ALL
SELECT d::date, '/', NULL, '', '', 500, 300
FROM generate_series(current_date - 364, current_date, interval '1 day') AS d
"""


def fill(url: str, env: dict[str, str]) -> None:
    broadsheet(env, "db", "upgrade", timeout=300)
    with psycopg.connect(url) as connection:
        posts = connection.execute("SELECT count(*) FROM posts").fetchone()[0]  # type: ignore[index]
    if posts < POSTS:
        args = [
            "demo",
            "--posts",
            str(POSTS),
            "--tags",
            str(TAGS),
            "--subscribers",
            str(SUBSCRIBERS),
        ]
        print(f"Filling: broadsheet {' '.join(args)} …", flush=True)
        broadsheet(env, *args, timeout=1800)
    with psycopg.connect(url, autocommit=True) as connection:
        newest = connection.execute("SELECT max(day) FROM stats_days").fetchone()[0]  # type: ignore[index]
        if newest != datetime.now(UTC).date():
            print("Writing a year of daily stats rows …", flush=True)
            connection.execute("DELETE FROM stats_days")
            connection.execute(YEAR_OF_STATS)
            connection.execute("VACUUM ANALYZE")
        rows = connection.execute("SELECT count(*) FROM stats_days").fetchone()[0]  # type: ignore[index]
    print(f"{POSTS:,} posts, {rows:,} daily stats rows.", flush=True)


def _wrk(wrk: str, shape: list[str], seconds: int, url: str) -> str:
    return subprocess.run([wrk, *shape, f"-d{seconds}s", "--latency", url], capture_output=True,
                          text=True, timeout=seconds + 30, check=True).stdout  # fmt: skip


def load(wrk: str, port: int, path: str, args: argparse.Namespace) -> tuple[Run, int]:
    """run_bench's load, with a browser's User-Agent so that each request is a reader's view;
    also returns how many requests wrk made, warm-up included."""
    url = f"http://127.0.0.1:{port}{path}"
    shape = [f"-t{args.threads}", f"-c{args.connections}", "-H", f"User-Agent: {BROWSER}"]
    warm = _wrk(wrk, shape, WARM_UP_SECONDS, url)
    out = _wrk(wrk, shape, args.duration, url)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    totals = [re.search(r"(\d+) requests in", text) for text in (warm, out)]
    if not (rps and p50 and p99 and all(totals)):
        sys.exit(f"could not read wrk's output:\n{out}")
    run = Run(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), _bad(out))
    return run, sum(int(found.group(1)) for found in totals if found)


def counted(url: str) -> int:
    with psycopg.connect(url) as connection:
        return int(
            connection.execute("SELECT coalesce(sum(views), 0) FROM stats_minutes").fetchone()[0]
        )  # type: ignore[index]


def reads(args: argparse.Namespace, path: str) -> list[str]:
    """Counting on and off, each run between two hello runs, alternating for ``--rounds``."""
    wrk = ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="broadsheet-stats-bench-") as folder:
        instance = Path(folder)
        env = server_env(args.database_url, instance, "embedded", "broadsheet_stats_bench:")
        # Production refuses the file mail backend; reads send no mail, so any server will do.
        env.update(MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1")
        on = {**env, "STATS_ENABLED": "true"}
        off = {**env, "STATS_ENABLED": "false"}
        ratios: dict[str, list[float]] = {"on": [], "off": []}
        lines = []
        with (
            gunicorn("hello_app:app", env, instance / "hello.log", ready="/") as hello,
            gunicorn("broadsheet:create_app()", on, instance / "on.log", ready=path) as counting,
            gunicorn("broadsheet:create_app()", off, instance / "off.log", ready=path) as plain,
        ):
            ceiling = load(wrk, hello, "/", args)[0]
            for round_ in range(1, args.rounds + 1):
                for name, port in (("on", counting), ("off", plain)):
                    before = counted(args.database_url)
                    run, total = load(wrk, port, path, args)
                    time.sleep(2.5)  # the writers' last batch: about a second
                    written = counted(args.database_url) - before
                    after = load(wrk, hello, "/", args)[0]
                    ratio = run.rps / statistics.mean([ceiling.rps, after.rps])
                    ratios[name].append(ratio)
                    lines.append(
                        f"round {round_}, counting {name:<3}: {run.rps:,.0f} req/s, "
                        f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, {ratio:.0%} of hello "
                        f"({ceiling.rps:,.0f} before, {after.rps:,.0f} after); "
                        f"views written {written:,} of {total:,} requests (wrk leaves up to one "
                        f"per connection and run uncounted at its end); bad {run.bad}"
                    )
                    ceiling = after
    for name, found in ratios.items():
        mean = statistics.mean(found)
        target = f" (target >= 70%: {'met' if mean >= 0.7 else 'NOT met'})" if name == "on" else ""
        lines.append(f"cached post, counting {name}: mean {mean:.0%} of hello{target}")
    return lines


def summary(app: Any) -> str:
    """The roll-up's whole-site part over the year loaded in bulk: site days and top lists
    (the beat runs it every 5 minutes, for today's top lists over the last 7, 30 and 90 days)."""
    from broadsheet.extensions import db
    from broadsheet.stats import rollup

    today = datetime.now(UTC).date()
    started = time.perf_counter()
    rollup.summarise(db.session, [today - timedelta(days=n) for n in range(365)], today)
    db.session.commit()
    year = time.perf_counter() - started
    started = time.perf_counter()
    rollup.summarise(db.session, [today], today)
    db.session.commit()
    beat = time.perf_counter() - started
    return (
        f"roll-up summaries: a year's site days and top lists {year:.1f} s; "
        f"as on the beat (today's) {beat:.2f} s"
    )


def dashboard(args: argparse.Namespace) -> list[str]:
    from broadsheet import create_app
    from broadsheet.accounts.models import Role, User
    from broadsheet.accounts.permissions import OPERATOR
    from broadsheet.accounts.services import create_user
    from broadsheet.extensions import db, utcnow

    with tempfile.TemporaryDirectory(prefix="broadsheet-stats-bench-") as folder:
        app = create_app({"DATABASE_URL": args.database_url, "SECRET_KEY": "x" * 32,
                          "INSTANCE_PATH": folder, "CELERY_BROKER_URL": "memory://",
                          "SITE_URL": "http://127.0.0.1", "MAIL_BACKEND": "memory",
                          "PAGE_CACHE_URL": "off", "STATS_ENABLED": "false"})  # fmt: skip
        with app.app_context():
            if db.session.query(User).filter_by(email=OWNER).one_or_none() is None:
                create_user(db.session, email=OWNER, role=Role.OWNER, now=utcnow(),
                            password=PASSWORD, actor=OPERATOR, name="Bench Owner")  # fmt: skip
                db.session.commit()
            db.session.remove()
            client = app.test_client()
            login = client.get("/admin/login").text
            token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login)
            assert token, "no CSRF token on the sign-in page"
            signed = client.post("/admin/login", data={"email": OWNER, "password": PASSWORD,
                                                       "csrf_token": token.group(1)})  # fmt: skip
            assert signed.status_code == 302, signed.text[:500]
            lines = [summary(app)]
            for days in (7, 30, 90):
                timings = []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    page = client.get(f"/admin/stats/?days={days}")
                    timings.append((time.perf_counter() - started) * 1000)
                    assert page.status_code == 200, page.text[:500]
                median = statistics.median(timings)
                met = "met" if median <= DASHBOARD_TARGET_MS else "NOT met"
                lines.append(
                    f"dashboard, {days} days: median {median:.0f} ms, best {min(timings):.0f} ms "
                    f"of {args.repeat} (target <= {DASHBOARD_TARGET_MS:.0f} ms: {met})"
                )
            db.engine.dispose()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("STATS_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of on and off")
    parser.add_argument("--repeat", type=int, default=7, help="dashboard renders per period")
    parser.add_argument("--fresh", action="store_true", help="start the database afresh")
    parser.add_argument("--skip-reads", action="store_true")
    args = parser.parse_args()
    ensure_database(args.database_url, fresh=args.fresh)
    env = {**os.environ, "DATABASE_URL": args.database_url, "SECRET_KEY": "s" * 32}
    fill(args.database_url, env)
    with psycopg.connect(args.database_url) as connection:
        slug = connection.execute(
            "SELECT slug FROM posts WHERE status = 'published' AND kind = 'post' "
            "ORDER BY published_at DESC LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
    print(f"Stats bench on {os.cpu_count()} CPUs (a shared machine: read the ratios).", flush=True)
    lines = [] if args.skip_reads else reads(args, f"/{slug}/")
    lines += dashboard(args)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
