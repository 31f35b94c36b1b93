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
4. with the servers still up, loads the long tail (random posts and tag pages
   out of about 21,000 URLs, a wrk Lua script) and a mixed load (80% on the 50
   most visited URLs, 20% on the long tail) while ``bench/staff_at_work.py``
   publishes or edits a post every 5 s, each against hello measured just before;
5. prints the in-process timings with the cache off (``bench/inprocess_timing.py``);
6. then runs the newsletter figures (``bench/newsletter_send.py``: a publish
   with 100,000 recipients, the worker's messages per second against a plain
   SMTP loop, and the worker's peak memory) in a throwaway database of their
   own;
7. writes the same tables as Markdown under bench/results/ with the CPU
   count and the versions used.

    make bench                      # or: .venv/bin/python bench/run_bench.py
    .venv/bin/python bench/run_bench.py --store embedded --duration 5

Targets: each read at least 70% of hello's requests per second with p99
under 25 ms at 16 connections with a page cache; ``/page/5000/`` and the tag
archive's 500th page within 1.5x of their first (p50 latency); the long tail
at least 15% of hello with p99 under 50 ms; the mixed load while staff
publish at least 40% of hello (issue 18).  Every server started here is stopped on the way
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
DEEP_HOME_PAGE = 5000
MIN_RATIO, MAX_P99_MS, MAX_DEEP_SLOWDOWN = 0.70, 25.0, 1.5
LONG_TAIL_POSTS = 20_000  # random public posts, beside every public tag's first page
TOP_URLS = 50
TOP_SHARE = 0.8  # of the mixed load's requests, on the TOP_URLS most visited
MIN_TAIL_RATIO, MAX_TAIL_P99_MS, MIN_MIXED_RATIO = 0.15, 50.0, 0.40
STAFF_EVERY_SECONDS = 5
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
    """The pages to load: one of each kind, the busiest public tag (deep enough for page 500)
    and author, and the home page's page 5000."""
    with psycopg.connect(url) as connection:
        tag = connection.execute(
            "SELECT t.slug, count(*) FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
            "WHERE pt.published_at IS NOT NULL AND t.name NOT LIKE '#%%' "
            "GROUP BY t.slug ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        author = connection.execute(
            "SELECT u.slug FROM post_authors pa JOIN users u ON u.id = pa.user_id "
            "WHERE pa.published_at IS NOT NULL GROUP BY u.slug ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        post = connection.execute(
            "SELECT slug FROM posts WHERE kind = 'post' AND status = 'published' "
            "ORDER BY published_at DESC, id DESC OFFSET 100 LIMIT 1"
        ).fetchone()
        standalone = connection.execute(
            "SELECT slug FROM posts WHERE kind = 'page' AND status = 'published' LIMIT 1"
        ).fetchone()
        per_page = connection.execute("SELECT posts_per_page FROM site_settings").fetchone()
    if tag is None or post is None or author is None or standalone is None:
        sys.exit("the database holds no public post; fill it with broadsheet demo")
    if int(tag[1]) <= (DEEP_PAGE - 1) * (per_page[0] if per_page else 10):
        sys.exit(f"the busiest tag, {tag[0]}, has {tag[1]} posts: too few for page {DEEP_PAGE}")
    return {
        "home": "/",
        f"home, page {DEEP_HOME_PAGE}": f"/page/{DEEP_HOME_PAGE}/",
        "post": f"/{post[0]}/",
        "standalone page": f"/{standalone[0]}/",
        "tag archive, page 1": f"/tag/{tag[0]}/",
        f"tag archive, page {DEEP_PAGE}": f"/tag/{tag[0]}/page/{DEEP_PAGE}/",
        "author archive": f"/author/{author[0]}/",
        "feed (RSS)": "/feed/",
        "feed (JSON Feed)": "/feed.json",
        "Content API posts (15)": "/api/v1/posts/?limit=15",
    }


def url_sets(url: str, folder: Path) -> tuple[Path, Path, int]:
    """Files of paths for wrk's Lua script: the long tail (random public posts and every
    public tag's first page) and the most visited (home, feeds, the busiest tags' first
    pages, the latest posts); and how many paths the long tail holds."""
    with psycopg.connect(url) as connection:
        posts = connection.execute(
            "SELECT slug FROM posts WHERE kind = 'post' AND status = 'published' "
            "AND deleted_at IS NULL ORDER BY md5(slug) LIMIT %s",
            (LONG_TAIL_POSTS,),
        ).fetchall()
        tags = connection.execute(
            "SELECT t.slug, count(*) FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
            "WHERE pt.published_at IS NOT NULL AND t.name NOT LIKE '#%%' "
            "GROUP BY t.slug ORDER BY count(*) DESC"
        ).fetchall()
        latest = connection.execute(
            "SELECT slug FROM posts WHERE kind = 'post' AND status = 'published' "
            "AND deleted_at IS NULL ORDER BY published_at DESC, id DESC LIMIT %s",
            (TOP_URLS,),
        ).fetchall()
    tail = [f"/{slug}/" for (slug,) in posts] + [f"/tag/{slug}/" for slug, _ in tags]
    top = ["/", "/feed/", "/feed.json"] + [f"/tag/{slug}/" for slug, _ in tags[:17]]
    top += [f"/{slug}/" for (slug,) in latest][: TOP_URLS - len(top)]
    tail_file, top_file = folder / "long-tail.txt", folder / "top.txt"
    tail_file.write_text("\n".join(tail) + "\n")
    top_file.write_text("\n".join(top) + "\n")
    return tail_file, top_file, len(tail)


# wrk's Lua script: each request a random path, from the most visited with probability
# ``share``, else from the long tail.  Each wrk thread seeds its own generator.
MIX_LUA = """
local tail, top, share = {}, {}, 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end
function init(args)
  for line in io.lines(args[1]) do tail[#tail + 1] = line end
  for line in io.lines(args[2]) do top[#top + 1] = line end
  share = tonumber(args[3])
  math.randomseed(os.time() * 100 + (seed or 0))
end
function request()
  if math.random() < share then
    return wrk.format("GET", top[math.random(#top)])
  end
  return wrk.format("GET", tail[math.random(#tail)])
end
"""


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
        settle(server.pid, deadline)
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


def settle(pid: int, deadline: float) -> None:
    """Wait until the server's processes are idle: one worker answering is not all of them
    started, and a worker still loading the app takes a core from whatever is measured next."""
    clock = os.sysconf("SC_CLK_TCK")

    def busy_seconds() -> float:
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        total = 0.0
        for process in [str(pid), *children]:
            with suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / clock  # user and system time
        return total

    before = busy_seconds()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = busy_seconds()
        if now - before < 0.05:  # under a tenth of a core in that half second
            return
        before = now


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


def load(
    wrk: str, port: int, path: str, args: argparse.Namespace, script: list[str] | None = None
) -> Run:
    """One wrk run after a short warm-up; wrk stops itself after ``--duration`` seconds.

    ``script``: a Lua script and its arguments (``[script, arg, …]``), which choose each
    request's path instead of ``path``."""
    url = f"http://127.0.0.1:{port}{path}"
    shape = [f"-t{args.threads}", f"-c{args.connections}"]
    lua = ["-s", script[0]] if script else []
    after = ["--", *script[1:]] if script else []
    subprocess.run(
        [wrk, *shape, f"-d{WARM_UP_SECONDS}s", *lua, url, *after],
        capture_output=True, timeout=WARM_UP_SECONDS + 30, check=True,
    )  # fmt: skip
    out = subprocess.run(
        [wrk, *shape, f"-d{args.duration}s", "--latency", *lua, url, *after],
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
        MAIL_BACKEND="smtp",  # production refuses the others; reads send nothing
        MAIL_SERVER="127.0.0.1",
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


@dataclass(frozen=True)
class Measured:
    runs: dict[str, Run]  # each read
    ceiling: list[Run]  # hello before each read and after the last
    mixes: dict[str, tuple[Run, Run]]  # the long tail, staff at work: (the site, hello before)


def measure(
    store: str, pages: dict[str, str], wrk: str, args: argparse.Namespace, sets: tuple[Path, Path]
) -> Measured:
    """Each page's run, and hello's runs between them (one before each page and one after the
    last), with both servers up: each page is compared with the hello runs on either side.
    Then the long tail and the mixed load while staff publish, each after a hello run."""
    prefix = f"broadsheet_bench_{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory(prefix="broadsheet-bench-") as folder:
        instance = Path(folder)
        env = server_env(args.database_url, instance, store, prefix)
        lua = instance / "mix.lua"
        lua.write_text(MIX_LUA)
        tail, top = (str(path) for path in sets)
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
                mixes = {}
                before = load(wrk, hello, "/", args)
                mixes["long tail"] = (
                    load(wrk, site, "/", args, [str(lua), tail, top, "0"]),
                    before,
                )
                if store != "off":
                    before = load(wrk, hello, "/", args)
                    with staff_at_work(env, args):
                        mixed = load(wrk, site, "/", args, [str(lua), tail, top, str(TOP_SHARE)])
                    mixes["mixed, staff publishing"] = (mixed, before)
                for name, (run, hello_run) in mixes.items():
                    print(f"  {store:<9} {name:<24} {run.rps:>9,.0f} req/s "
                          f"(hello before it {hello_run.rps:,.0f})", flush=True)  # fmt: skip
        finally:
            if store == "redis":
                forget(prefix)
    return Measured(runs, ceiling, mixes)


@contextmanager
def staff_at_work(env: dict[str, str], args: argparse.Namespace) -> Iterator[None]:
    """``bench/staff_at_work.py`` publishing or editing a post every few seconds meanwhile."""
    seconds = WARM_UP_SECONDS + args.duration + 5
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "staff_at_work.py"),
         "--every", str(STAFF_EVERY_SECONDS), "--seconds", str(seconds)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        yield
    finally:
        with suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def forget(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()


# Reporting ------------------------------------------------------------------------------------


def table(store: str, measured: Measured) -> list[str]:
    runs, ceiling = measured.runs, measured.ceiling
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
    lines.append("")
    for first_name, deep_name in (
        ("home", f"home, page {DEEP_HOME_PAGE}"),
        ("tag archive, page 1", f"tag archive, page {DEEP_PAGE}"),
    ):
        first, deep = runs[first_name], runs[deep_name]
        slowdown = deep.p50_ms / first.p50_ms
        lines.append(
            f"- {deep_name} against {first_name}: p50 {slowdown:.2f}x, req/s "
            f"{first.rps / deep.rps:.2f}x slower; within {MAX_DEEP_SLOWDOWN}x: "
            f"{_met(slowdown <= MAX_DEEP_SLOWDOWN)}"
        )
    lines += [
        "",
        "| mix | req/s | p50 ms | p99 ms | hello just before, req/s | ratio to hello | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for name, (run, before) in measured.mixes.items():
        ratio = run.rps / before.rps
        flag = f" ({run.bad} bad responses)" if run.bad else ""
        if name == "long tail":
            verdict = (
                f"≥ {MIN_TAIL_RATIO:.2f}, p99 ≤ {MAX_TAIL_P99_MS:.0f} ms: "
                f"{_met(ratio >= MIN_TAIL_RATIO and run.p99_ms <= MAX_TAIL_P99_MS)}"
            )
        else:
            verdict = f"≥ {MIN_MIXED_RATIO:.2f}: {_met(ratio >= MIN_MIXED_RATIO)}"
        lines.append(
            f"| {name}{flag} | {run.rps:,.0f} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | "
            f"{before.rps:,.0f} | {ratio:.2f} | {verdict} |"
        )
    lines.append("")
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
    lists = tempfile.TemporaryDirectory(prefix="broadsheet-bench-urls-")
    tail_file, top_file, tail_count = url_sets(args.database_url, Path(lists.name))
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    print(
        f"Load: wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency; "
        f"gunicorn {WORKERS} workers x {THREADS} threads (gthread)",
        flush=True,
    )
    results = {store: measure(store, pages, wrk, args, (tail_file, top_file)) for store in stores}
    lists.cleanup()
    print("In-process timings, cache off …", flush=True)
    timings = in_process(args.database_url)
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
        f"- Targets: req/s ≥ {MIN_RATIO:.0%} of hello's, p99 < {MAX_P99_MS:.0f} ms (with a "
        f"page cache); /page/{DEEP_HOME_PAGE}/ and tag page {DEEP_PAGE} within "
        f"{MAX_DEEP_SLOWDOWN}x of page 1; the long tail ≥ {MIN_TAIL_RATIO:.0%} of hello with "
        f"p99 ≤ {MAX_TAIL_P99_MS:.0f} ms; the mixed load while staff publish ≥ "
        f"{MIN_MIXED_RATIO:.0%} of hello",
        f"- Long tail: random paths out of {tail_count:,} (public posts and every public tag's "
        f"first page), wrk's Lua script; mixed: {TOP_SHARE:.0%} on the {TOP_URLS} most visited "
        f"(home, feeds, busiest tags, latest posts), the rest on the long tail, while "
        f"bench/staff_at_work.py publishes or edits a post every {STAFF_EVERY_SECONDS} s",
        "",
    ]
    for store, measured in results.items():
        lines += table(store, measured)
    lines += ["### In-process, page cache off", "", "```", timings.strip(), "```", ""]
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


def in_process(database_url: str) -> str:
    """``bench/inprocess_timing.py``'s table (the app in one process, the Flask test client)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "inprocess_timing.py")],
        env={**os.environ, "BENCH_DATABASE_URL": database_url},
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return f"inprocess_timing.py failed:\n{done.stderr[-2000:]}"
    return done.stdout


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    main()
