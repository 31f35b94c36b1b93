# Over 400 lines: one script run whole; its stages (fill, serve, load, report) read in order.
"""Speed at scale: Broadsheet's reads under gunicorn and wrk, against a Flask "hello" ceiling.

On PostgreSQL (a database named broadsheet_bench on 127.0.0.1, created when
missing and filled once with ``broadsheet demo --posts 100000 --tags 1000
--subscribers 100000``), this:

1. starts Broadsheet under gunicorn with the project's gunicorn.conf.py and a
   fixed size (2 worker processes of 4 threads), bound to 127.0.0.1, in
   production mode; and beside it ``bench/hello_app.py`` under the very same
   configuration;
2. drives each URL with wrk (``-t2 -c16 -d10s --latency``; wrk is installed
   from Debian's packages when missing), the hello endpoint before each page
   and after the last;
3. prints requests per second, p50 and p99 latency, and the ratio of
   requests per second to the hello endpoint's (the mean of the hello runs
   just before and just after it, so that a slow patch of the machine
   weighs on both sides of the ratio), with whether each target is met, for
   each page cache store asked for;
4. then runs the newsletter figures (``bench/newsletter_send.py``: a publish
   with 100,000 recipients, the worker's messages per second against a plain
   SMTP loop, and the worker's peak memory) in a throwaway database of their
   own;
5. writes the same tables as Markdown under bench/results/ with the CPU
   count and the versions used.

    make bench                      # or: .venv/bin/python bench/run_bench.py
    .venv/bin/python bench/run_bench.py --store embedded --duration 5

Targets: each read at least 70% of hello's requests per second with p99
under 25 ms at 16 connections; the tag archive's 500th page within 1.5x of
its first (p50 latency).  Every server started here is stopped on the way
out, and every load run is bounded in time.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/broadsheet_bench"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTS, TAGS, SUBSCRIBERS = 100_000, 1000, 100_000
WORKERS, THREADS = 2, 4
DEEP_PAGE = 500
MIN_RATIO, MAX_P99_MS, MAX_DEEP_SLOWDOWN = 0.70, 25.0, 1.5
START_SECONDS = 60  # for a server to answer its first request
WARM_UP_SECONDS = 2
STORES = ("embedded", "redis", "off")
SECRET = secrets.token_hex(32)  # a throwaway database: nothing signed outlives the run


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    bad: int  # non-2xx/3xx responses and socket errors


# The database -------------------------------------------------------------------------------


def ensure_database(url: str, *, fresh: bool) -> None:
    parts = make_url(url)
    admin = parts.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{parts.database}" WITH (FORCE)')
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parts.database,)
        ).fetchone()
        if not found:
            connection.execute(f'CREATE DATABASE "{parts.database}"')
            print(f"Created database {parts.database}.")


def broadsheet(env: dict[str, str], *args: str, timeout: float) -> str:
    done = subprocess.run(
        [str(BIN / "broadsheet"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        hint = "\n(A schema from another checkout? --fresh starts the database afresh.)"
        sys.exit(f"broadsheet {' '.join(args)} failed:\n{done.stdout}{done.stderr}{hint}")
    return done.stdout


def fill(url: str, env: dict[str, str]) -> None:
    broadsheet(env, "db", "upgrade", timeout=300)
    with psycopg.connect(url) as connection:
        posts = scalar(connection, "SELECT count(*) FROM posts")
    if posts >= POSTS:
        print(f"Reusing the {posts:,} posts already in the database.", flush=True)
        return
    args = ["demo", "--posts", str(POSTS), "--tags", str(TAGS), "--subscribers", str(SUBSCRIBERS)]
    print(f"Filling: broadsheet {' '.join(args)} …", flush=True)
    print(broadsheet(env, *args, timeout=1800).strip())
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def scalar(connection: psycopg.Connection, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    return int(row[0]) if row else 0


def urls(url: str) -> dict[str, str]:
    """The pages to load: the busiest public tag (deep enough for page 500) and a post."""
    with psycopg.connect(url) as connection:
        tag = connection.execute(
            "SELECT t.slug, count(*) FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
            "WHERE pt.published_at IS NOT NULL AND t.name NOT LIKE '#%%' "
            "GROUP BY t.slug ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        post = connection.execute(
            "SELECT slug FROM posts WHERE kind = 'post' AND status = 'published' "
            "ORDER BY published_at DESC, id DESC OFFSET 100 LIMIT 1"
        ).fetchone()
        per_page = connection.execute("SELECT posts_per_page FROM site_settings").fetchone()
    if tag is None or post is None:
        sys.exit("the database holds no public post; fill it with broadsheet demo")
    if int(tag[1]) <= (DEEP_PAGE - 1) * (per_page[0] if per_page else 10):
        sys.exit(f"the busiest tag, {tag[0]}, has {tag[1]} posts: too few for page {DEEP_PAGE}")
    return {
        "home": "/",
        "post": f"/{post[0]}/",
        "tag archive, page 1": f"/tag/{tag[0]}/",
        f"tag archive, page {DEEP_PAGE}": f"/tag/{tag[0]}/page/{DEEP_PAGE}/",
        "feed (RSS)": "/feed/",
        "Content API posts": "/api/v1/posts/",
    }


def dataset(url: str) -> str:
    with psycopg.connect(url) as connection:
        posts = scalar(connection, "SELECT count(*) FROM posts")
        tags = scalar(connection, "SELECT count(*) FROM tags")
        subscribers = 0
        if connection.execute("SELECT to_regclass('subscribers')").fetchone() != (None,):
            subscribers = scalar(connection, "SELECT count(*) FROM subscribers")
    return f"{posts:,} posts, {tags:,} tags, {subscribers:,} subscribers"


# Servers and load ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@contextmanager
def gunicorn(app: str, env: dict[str, str], log: Path, *, ready: str) -> Iterator[int]:
    """``app`` served by gunicorn.conf.py on 127.0.0.1; stopped (its whole group) on exit."""
    port = free_port()
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench"), app],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while not answers(port, ready):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{app} did not start; its log:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield port
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("Installing wrk from Debian's packages …", flush=True)
    install = ["apt-get", "install", "-y", "-q", "wrk"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT, "timeout": 600}
    if subprocess.run(install, check=False, **quiet).returncode != 0:  # type: ignore[call-overload]
        subprocess.run(["apt-get", "update", "-q"], check=False, **quiet)  # type: ignore[call-overload]
        subprocess.run(install, check=True, **quiet)  # type: ignore[call-overload]
    return shutil.which("wrk") or sys.exit("wrk could not be installed")


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def load(wrk: str, port: int, path: str, args: argparse.Namespace) -> Run:
    """One wrk run after a short warm-up; wrk stops itself after ``--duration`` seconds."""
    url = f"http://127.0.0.1:{port}{path}"
    shape = [f"-t{args.threads}", f"-c{args.connections}"]
    subprocess.run(
        [wrk, *shape, f"-d{WARM_UP_SECONDS}s", url],
        capture_output=True, timeout=WARM_UP_SECONDS + 30, check=True,
    )  # fmt: skip
    out = subprocess.run(
        [wrk, *shape, f"-d{args.duration}s", "--latency", url],
        capture_output=True, text=True, timeout=args.duration + 30, check=True,
    ).stdout  # fmt: skip
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if not (rps and p50 and p99):
        sys.exit(f"could not read wrk's output:\n{out}")
    return Run(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), _bad(out))


def _bad(out: str) -> int:
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (int(non_2xx.group(1)) if non_2xx else 0) + (
        sum(int(n) for n in errors.groups()) if errors else 0
    )


# One configuration, measured ------------------------------------------------------------------


def server_env(database_url: str, instance: Path, store: str, prefix: str) -> dict[str, str]:
    """Production settings for both servers; PORT unset, so nothing listens beyond loopback."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "PAGE_CACHE_URL")}
    env.update(
        BROADSHEET_ENV="production",
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET,
        SITE_URL="http://127.0.0.1",
        CELERY_BROKER_URL="memory://",  # reads never enqueue
        MAIL_BACKEND="file",
        BROADSHEET_INSTANCE=str(instance),
        WEB_CONCURRENCY=str(WORKERS),
        GUNICORN_THREADS=str(THREADS),
        PAGE_CACHE_PREFIX=prefix,
    )
    if store == "redis":
        env["PAGE_CACHE_URL"] = REDIS_URL
    elif store == "off":
        env["PAGE_CACHE_URL"] = "off"
    return env


def measure(
    store: str, pages: dict[str, str], wrk: str, args: argparse.Namespace
) -> tuple[dict[str, Run], list[Run]]:
    """Each page's run, and hello's runs between them (one before each page and one after the
    last), with both servers up: each page is compared with the hello runs on either side."""
    prefix = f"broadsheet_bench_{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory(prefix="broadsheet-bench-") as folder:
        instance = Path(folder)
        env = server_env(args.database_url, instance, store, prefix)
        try:
            with (
                gunicorn("hello_app:app", env, instance / "hello.log", ready="/") as hello,
                gunicorn("broadsheet:create_app()", env, instance / "app.log", ready="/") as site,
            ):
                ceiling, runs = [], {}
                for name, path in pages.items():
                    if not answers(site, path):
                        sys.exit(f"{path} does not answer 200")
                    ceiling.append(load(wrk, hello, "/", args))
                    runs[name] = load(wrk, site, path, args)
                    print(f"  {store:<9} {name:<24} {runs[name].rps:>9,.0f} req/s "
                          f"(hello before it {ceiling[-1].rps:,.0f})", flush=True)  # fmt: skip
                ceiling.append(load(wrk, hello, "/", args))
        finally:
            if store == "redis":
                forget(prefix)
    return runs, ceiling


def forget(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


# Reporting ------------------------------------------------------------------------------------


def table(store: str, runs: dict[str, Run], ceiling: list[Run]) -> list[str]:
    hello = statistics.mean(run.rps for run in ceiling)
    lines = [
        f"### Page cache: {store}",
        "",
        f"hello, measured before each read and after the last: "
        f"{', '.join(f'{run.rps:,.0f}' for run in ceiling)} req/s (mean {hello:,.0f}); "
        f"p50 {statistics.median(run.p50_ms for run in ceiling):.2f} ms, "
        f"p99 {statistics.median(run.p99_ms for run in ceiling):.2f} ms (medians)",
        "",
        "| read | req/s | p50 ms | p99 ms | hello around it, req/s | ratio to hello "
        "| ratio ≥ 0.70 | p99 < 25 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: | :---: |",
    ]
    for index, (name, run) in enumerate(runs.items()):
        around = (ceiling[index].rps + ceiling[index + 1].rps) / 2
        ratio = run.rps / around
        flag = f" ({run.bad} bad responses)" if run.bad else ""
        lines.append(
            f"| {name}{flag} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
            f"{around:,.0f} | {ratio:.2f} | {_met(ratio >= MIN_RATIO)} | "
            f"{_met(run.p99_ms < MAX_P99_MS)} |"
        )
    first, deep = runs["tag archive, page 1"], runs[f"tag archive, page {DEEP_PAGE}"]
    slowdown = deep.p50_ms / first.p50_ms
    lines += [
        "",
        f"Tag archive page {DEEP_PAGE} against page 1: p50 {slowdown:.2f}x, "
        f"req/s {first.rps / deep.rps:.2f}x slower; within {MAX_DEEP_SLOWDOWN}x: "
        f"{_met(slowdown <= MAX_DEEP_SLOWDOWN)}",
        "",
    ]
    return lines


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def versions(database_url: str, wrk: str, stores: list[str]) -> list[str]:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    wrk_version = subprocess.run(
        [wrk, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.split(" Copyright")[0].strip()  # fmt: skip
    found = [
        f"Python {platform.python_version()}",
        *(
            f"{name} {importlib.metadata.version(name)}"
            for name in ("Flask", "SQLAlchemy", "gunicorn", "psycopg", "cachelib", "redis")
        ),
        f"PostgreSQL {row[0] if row else '?'}",
        wrk_version,
    ]
    if "redis" in stores:
        info: Any = redis.Redis.from_url(REDIS_URL).info("server")
        found.append(f"Redis server {info['redis_version']}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per URL")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument(
        "--store", action="append", choices=STORES,
        help="page cache store(s) to measure; default: embedded, redis (when reachable), off",
    )  # fmt: skip
    parser.add_argument(
        "--fresh", action="store_true", help="drop the benchmark database and fill it anew"
    )
    parser.add_argument(
        "--newsletter-subscribers", type=int, default=SUBSCRIBERS, metavar="N",
        help="recipients for the newsletter figures (bench/newsletter_send.py); 0 skips them",
    )  # fmt: skip
    args = parser.parse_args()
    stores = args.store or [
        s for s in STORES if s != "redis" or _reachable(REDIS_URL)
    ]  # fmt: skip
    wrk = ensure_wrk()
    ensure_database(args.database_url, fresh=args.fresh)
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef",
    }
    fill(args.database_url, env)
    pages = urls(args.database_url)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    print(
        f"Load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; "
        f"gunicorn {WORKERS} workers x {THREADS} threads (gthread)",
        flush=True,
    )
    results = {store: measure(store, pages, wrk, args) for store in stores}
    load_after = os.getloadavg()
    lines = [
        f"# Broadsheet read benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {os.cpu_count()} CPUs ({platform.machine()}), load average "
        f"{load_before[0]:.2f} at the start and {load_after[0]:.2f} at the end (wrk, both "
        "servers, PostgreSQL and anything else running share them)",
        f"- Data: {dataset(args.database_url)}",
        f"- Servers: gunicorn.conf.py, {WORKERS} workers x {THREADS} threads (gthread), "
        "BROADSHEET_ENV=production, 127.0.0.1; the hello app under the same configuration",
        f"- Load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency, "
        f"after a {WARM_UP_SECONDS} s warm-up per URL; hello measured before each read and after "
        "the last",
        f"- Versions: {', '.join(versions(args.database_url, wrk, stores))}",
        f"- Targets: req/s ≥ {MIN_RATIO:.0%} of hello's, p99 < {MAX_P99_MS:.0f} ms; tag page "
        f"{DEEP_PAGE} within {MAX_DEEP_SLOWDOWN}x of page 1",
        "",
    ]
    for store, (runs, ceiling) in results.items():
        lines += table(store, runs, ceiling)
    if args.newsletter_subscribers:
        from newsletter_send import measure_newsletter  # a sibling script, like hello_app

        print(f"Newsletter: {args.newsletter_subscribers:,} recipients …", flush=True)
        lines += ["", *measure_newsletter(args.newsletter_subscribers)]
    report = "\n".join(lines)
    print("\n" + report)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{started:%Y-%m-%d-%H%M}.md"
    path.write_text(report)
    print(f"Written to {path.relative_to(ROOT)}")


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    main()
