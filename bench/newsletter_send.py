# Over 400 lines: one script run whole (sink, worker, web, publish, measure), top to bottom.
"""Newsletter at scale: the publish request, the worker's send rate and its memory.

Creates a throwaway PostgreSQL database with 100,000 confirmed subscribers
(``--subscribers`` to go smaller), starts an SMTP sink (aiosmtpd, its own
process, on 127.0.0.1), the real ``celery worker`` on RabbitMQ and the app
under gunicorn (the project's gunicorn.conf.py, bound to 127.0.0.1), and then:

1. publish: times one Admin API request, ``POST /api/v1/admin/posts/<id>/publish/``
   with ``{"email": true}`` and a bearer token, which freezes every recipient
   in the publishing transaction and answers;
2. worker: times from the start of that request to the last delivery row
   marked sent (claims, per-message marks, one SMTP connection per batch:
   everything production does), while sampling the resident memory of the
   worker's whole process tree (the main process and its pool children)
   from /proc;
3. plain loop: in this one process, renders the same messages (same
   composer, same per-subscriber links and headers) and sends them over one
   reused SMTP connection with smtplib, with no database writes and no queue.

Prints a Markdown table with whether each target is met: the publish
answers within 1 s, the worker reaches at least half the plain loop's
messages per second, and the worker's memory stays under 250 MB.

    .venv/bin/python bench/newsletter_send.py [--subscribers 100000] [--concurrency 2]

``measure_newsletter()`` returns the same lines, for bench/run_bench.py's
report.  BROADSHEET_TEST_POSTGRES and BROADSHEET_TEST_AMQP choose the
servers (the test suite's defaults otherwise); other settings in the
environment reach the app and the worker, e.g.
``NEWSLETTER_SYNCHRONOUS_COMMIT=false`` to measure that setting.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import psycopg
from run_bench import gunicorn  # a sibling script: bench/ is on sys.path for both
from sqlalchemy import insert, select
from sqlalchemy.engine import make_url

from broadsheet import create_app
from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token, create_user
from broadsheet.cli import upgrade_schema
from broadsheet.content.services import create_post
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter.emails import NewsletterComposer
from broadsheet.newsletter.models import Subscriber, SubscriberStatus

POSTGRES = os.environ.get(
    "BROADSHEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("BROADSHEET_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
SECRET = "bench-secret-key-0123456789abcdef"  # noqa: S105 (a throwaway database's)
SUBSCRIBERS = 100_000
MAX_PUBLISH_SECONDS, MIN_RATIO, MAX_WORKER_MB = 1.0, 0.50, 250.0
MEMORY_SAMPLE_SECONDS = 0.2
WORKER_START_SECONDS = 60
MARKDOWN = "\n\n".join(
    f"Paragraph {n}: a newsletter post long enough to look like one, with *emphasis*, "
    "a [link](https://example.com/) and some `code`."
    for n in range(12)
)


@dataclass(frozen=True)
class Figures:
    subscribers: int
    concurrency: int
    batch_size: int
    synchronous_commit: bool
    publish_seconds: float
    worker_seconds: float
    loop_seconds: float
    tree_pss_mb: float
    tree_rss_mb: float
    largest_rss_mb: float
    processes: int

    @property
    def worker_rate(self) -> float:
        return self.subscribers / self.worker_seconds

    @property
    def loop_rate(self) -> float:
        return self.subscribers / self.loop_seconds

    @property
    def ratio(self) -> float:
        return self.worker_rate / self.loop_rate


# Servers ------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_sink(port: int, counter: Any, ready: Any) -> None:
    """An SMTP server that accepts everything and counts messages (runs in its own process)."""
    from aiosmtpd.controller import Controller

    class Count:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    signal.sigwait({signal.SIGTERM})
    controller.stop()


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Any]]:
    """An SMTP sink on 127.0.0.1: its port and its shared message counter."""
    port = free_port()
    counter, ready = multiprocessing.Value("l", 0), multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, counter, ready), daemon=True)
    sink.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        yield port, counter
    finally:
        os.kill(sink.pid or 0, signal.SIGTERM)
        sink.join(10)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A database of this run's own; dropped (connections and all) on the way out."""
    name = f"broadsheet_bench_newsletter_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def celery_worker(
    env: dict[str, str], queue: str, concurrency: int, log_path: Path
) -> Iterator[int]:
    """``celery worker`` on ``queue`` in a session of its own; its pid.  Stopped on exit."""
    log = log_path.open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "broadsheet.worker", "worker",
         "--loglevel", "WARNING", "--concurrency", str(concurrency), "--pool", "prefork",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue],
        env=env, start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + WORKER_START_SECONDS
        while len(process_tree(worker.pid)) < concurrency + 1:
            if worker.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"the celery worker did not start:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        time.sleep(3)  # the pool is forked; let the consumer reach the broker
        yield worker.pid
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=10)
        log.close()
        from kombu import Connection

        with Connection(AMQP) as connection:
            connection.default_channel.queue_delete(queue)


# Memory -------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (empty once ``root`` is gone)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        found.append(pid)
        todo.extend(int(child) for child in children)
    return found


def memory_kb(pid: int) -> tuple[int, int]:
    """Resident and proportional set size of ``pid`` in kB (0, 0 once it is gone)."""
    sizes = {"Rss:": 0, "Pss:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(" ")
            if name in sizes:
                sizes[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return sizes["Rss:"], sizes["Pss:"]


class MemoryPeak:
    """Samples the memory of a process tree in a thread until stopped (peaks, in kB)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.pss_peak = self.rss_peak = self.largest_peak = self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = [memory_kb(pid) for pid in process_tree(self.root)]
            if sizes:
                self.rss_peak = max(self.rss_peak, sum(rss for rss, _ in sizes))
                self.pss_peak = max(self.pss_peak, sum(pss for _, pss in sizes))
                self.largest_peak = max(self.largest_peak, *(rss for rss, _ in sizes))
                self.processes = max(self.processes, len(sizes))
            self._stop.wait(MEMORY_SAMPLE_SECONDS)

    def __enter__(self) -> MemoryPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


# The data -----------------------------------------------------------------------------------


def settings(url: str, instance: Path, port: int, queue: str, batch: int) -> dict[str, str]:
    return {
        "BROADSHEET_ENV": "production",
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET,
        "SITE_URL": "https://bench.example.com",
        "CELERY_BROKER_URL": AMQP,
        "BROADSHEET_QUEUE": queue,
        "BROADSHEET_INSTANCE": str(instance),
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(port),
        "NEWSLETTER_BATCH_SIZE": str(batch),
    }


def fill(count: int) -> tuple[int, str]:
    """``count`` confirmed subscribers and a draft post; the post's id and a staff token."""
    now = utcnow()
    for start in range(0, count, 10_000):
        db.session.execute(
            insert(Subscriber),
            [
                {"email": f"reader{n:06d}@example.com", "status": SubscriberStatus.CONFIRMED,
                 "created_at": now, "confirmed_at": now, "source": "bench", "consent": "bench"}
                for n in range(start, min(count, start + 10_000))
            ],
        )  # fmt: skip
    author = create_user(db.session, role=Role.OWNER, email="bench@example.com",
                         name="Bench Writer", now=now, actor=OPERATOR)  # fmt: skip
    post = create_post(db.session, title="The weekly bench", markdown=MARKDOWN, authors=[author],
                       tags=["Bench"], now=now, actor=OPERATOR)  # fmt: skip
    _, token = create_token(db.session, author, label="bench", now=now)
    db.session.commit()
    return post.id, token


def vacuum_analyze(url: str) -> None:
    """What autovacuum would have done to a list that was not filled a moment ago."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


# The measurements ---------------------------------------------------------------------------


def publish(port: int, post_id: int, token: str) -> tuple[float, float]:
    """POST the publish with email; returns when it started (epoch) and how long it took."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"email": True})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started_at, started = time.time(), time.perf_counter()
    try:
        connection.request("POST", f"/api/v1/admin/posts/{post_id}/publish/", body, headers)
        response = connection.getresponse()
        answer = response.read()
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    if response.status != 200:
        raise SystemExit(f"the publish answered {response.status}: {answer[:500]!r}")
    return started_at, seconds


def wait_until_sent(url: str, post_id: int, total: int, started_at: float, timeout: float) -> float:
    """Seconds from ``started_at`` to the last row marked sent, once the send is done."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while time.monotonic() < deadline:
            row = connection.execute(
                "SELECT id, status FROM newsletter_sends WHERE post_id = %s", (post_id,)
            ).fetchone()
            if row is not None and row[1] != "sending":
                sent, last = connection.execute(
                    "SELECT count(*), max(sent_at) FROM newsletter_deliveries "
                    "WHERE send_id = %s AND status = 'sent'",
                    (row[0],),
                ).fetchone() or (0, None)
                if row[1] != "done" or sent != total or last is None:
                    raise SystemExit(f"the send ended {row[1]} with {sent} of {total} sent")
                return float(last.astimezone(UTC).timestamp() - started_at)
            time.sleep(0.5)
    raise SystemExit(f"the worker did not finish within {timeout:.0f} s")


def time_plain_loop(post_id: int, port: int, config: Any) -> tuple[float, int]:
    subscribers = db.session.execute(
        select(Subscriber.id, Subscriber.email).order_by(Subscriber.id)
    ).all()
    composer = NewsletterComposer(db.session, post_id, config)
    db.session.commit()
    started = time.perf_counter()
    connection = smtplib.SMTP("127.0.0.1", port)
    for subscriber_id, email in subscribers:
        message = composer.compose(subscriber_id, email)
        connection.sendmail(
            "bench@example.com", [email], message.message().as_bytes(linesep="\r\n")
        )
    connection.quit()
    return time.perf_counter() - started, len(subscribers)


def run(subscribers: int, concurrency: int, batch_size: int, timeout: float) -> Figures:
    queue = f"bench_newsletter_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        port, counter = stack.enter_context(smtp_sink())
        url = stack.enter_context(scratch_database())
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        env = settings(url, scratch / "instance", port, queue, batch_size)
        app = create_app({**env, "INSTANCE_PATH": env["BROADSHEET_INSTANCE"]})
        stack.enter_context(app.app_context())
        stack.callback(db.engine.dispose)
        stack.callback(db.session.remove)
        upgrade_schema()
        post_id, token = fill(subscribers)
        db.session.remove()
        vacuum_analyze(url)
        served = {k: v for k, v in os.environ.items() if k not in ("PORT", "DATABASE_URL")}
        served.update(env, WEB_CONCURRENCY="2", GUNICORN_THREADS="4")
        worker = stack.enter_context(
            celery_worker(served, queue, concurrency, scratch / "worker.log")
        )
        web = stack.enter_context(
            gunicorn("broadsheet:create_app()", served, scratch / "web.log", ready="/")
        )
        with MemoryPeak(worker) as memory:
            started_at, publish_seconds = publish(web, post_id, token)
            worker_seconds = wait_until_sent(url, post_id, subscribers, started_at, timeout)
        after_worker = counter.value
        loop_seconds, looped = time_plain_loop(post_id, port, app.config)
        if looped != subscribers or counter.value - after_worker != looped:
            raise SystemExit("the plain loop did not hand every message to the sink")
    return Figures(
        subscribers=subscribers,
        concurrency=concurrency,
        batch_size=batch_size,
        synchronous_commit=bool(app.config["NEWSLETTER_SYNCHRONOUS_COMMIT"]),
        publish_seconds=publish_seconds,
        worker_seconds=worker_seconds,
        loop_seconds=loop_seconds,
        tree_pss_mb=memory.pss_peak / 1024,
        tree_rss_mb=memory.rss_peak / 1024,
        largest_rss_mb=memory.largest_peak / 1024,
        processes=memory.processes,
    )


# Reporting ----------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(figures: Figures) -> list[str]:
    f = figures
    return [
        f"### Newsletter: {f.subscribers:,} subscribers",
        "",
        f"Celery worker on RabbitMQ, --concurrency {f.concurrency} (prefork), batch size "
        f"{f.batch_size}, NEWSLETTER_SYNCHRONOUS_COMMIT={str(f.synchronous_commit).lower()}; "
        f"PostgreSQL; SMTP sink: aiosmtpd on 127.0.0.1. The plain loop is one "
        "process rendering the same messages over one reused SMTP connection, with no database.",
        "",
        "| figure | value | target | |",
        "| --- | ---: | --- | :---: |",
        f"| publish request with email (Admin API, gunicorn) | {f.publish_seconds:.2f} s "
        f"| < {MAX_PUBLISH_SECONDS:.0f} s | {_met(f.publish_seconds < MAX_PUBLISH_SECONDS)} |",
        f"| worker, publish to last row marked sent | {f.worker_rate:,.0f} msg/s "
        f"({f.worker_seconds:.1f} s) | | |",
        f"| plain loop | {f.loop_rate:,.0f} msg/s ({f.loop_seconds:.1f} s) | | |",
        f"| worker / plain loop | {f.ratio:.2f} | ≥ {MIN_RATIO:.2f} "
        f"| {_met(f.ratio >= MIN_RATIO)} |",
        f"| worker peak memory, whole tree ({f.processes} processes, PSS) "
        f"| {f.tree_pss_mb:.0f} MB | < {MAX_WORKER_MB:.0f} MB "
        f"| {_met(f.tree_pss_mb < MAX_WORKER_MB)} |",
        f"| worker peak memory, whole tree, sum of RSS | {f.tree_rss_mb:.0f} MB | | |",
        f"| worker peak memory, largest process (RSS) | {f.largest_rss_mb:.0f} MB | | |",
        "",
        "Memory is sampled from /proc every 0.2 s during the send. The target is held "
        "against the whole tree's proportional set size (PSS): the memory the worker's "
        "processes hold, each page they share after the fork counted once, as a platform's "
        "per-container limit counts it. The sum of RSS counts those shared pages once per "
        "process.",
        "",
    ]


def measure_newsletter(
    subscribers: int = SUBSCRIBERS,
    *,
    concurrency: int = 2,
    batch_size: int = 100,
    timeout: float = 1800.0,
) -> list[str]:
    """Run the newsletter benchmark; its report as Markdown lines."""
    return table(run(subscribers, concurrency, batch_size, timeout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=SUBSCRIBERS)
    parser.add_argument("--concurrency", type=int, default=2, help="the Procfile's default")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    lines = measure_newsletter(
        args.subscribers,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        timeout=args.timeout,
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
