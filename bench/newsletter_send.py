"""Newsletter throughput: the real worker path beside a plain SMTP loop, in the same run.

Creates a throwaway PostgreSQL database with 10,000 confirmed subscribers,
starts an SMTP sink (aiosmtpd, its own process, on 127.0.0.1), and then:

1. worker: publishes a post with email and times until every delivery row is
   marked sent by real ``celery worker`` processes on RabbitMQ (claims,
   per-message marks, one SMTP connection per batch: everything production
   does);
2. plain loop: in this one process, renders the same messages (same
   composer, same per-subscriber links and headers) and sends them over one
   reused SMTP connection with smtplib, with no database writes and no queue.

Prints messages per second for both and their ratio.

    .venv/bin/python bench/newsletter_send.py [--subscribers 10000] [--concurrency 2]

BROADSHEET_TEST_POSTGRES and BROADSHEET_TEST_AMQP choose the servers (the
test suite's defaults otherwise).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from broadsheet import create_app
from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_user
from broadsheet.cli import upgrade_schema
from broadsheet.content.services import create_post
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter.emails import NewsletterComposer
from broadsheet.newsletter.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from broadsheet.newsletter.sending import publish_with_email

POSTGRES = os.environ.get(
    "BROADSHEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("BROADSHEET_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
SECRET = "bench-secret-key-0123456789abcdef"  # noqa: S105 (a throwaway database's)
MARKDOWN = "\n\n".join(
    f"Paragraph {n}: a newsletter post long enough to look like one, with *emphasis*, "
    "a [link](https://example.com/) and some `code`."
    for n in range(12)
)


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


def create_database() -> tuple[str, str]:
    name = f"broadsheet_bench_newsletter_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    return name, url


def drop_database(name: str) -> None:
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def settings(url: str, instance: Path, port: int, queue: str, batch: int) -> dict[str, str]:
    return {
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


def fill(count: int) -> int:
    now = utcnow()
    db.session.execute(
        insert(Subscriber),
        [
            {"email": f"reader{n:06d}@example.com", "status": SubscriberStatus.CONFIRMED,
             "created_at": now, "confirmed_at": now, "source": "bench", "consent": "bench"}
            for n in range(count)
        ],
    )  # fmt: skip
    author = create_user(db.session, role=Role.OWNER, email="bench@example.com",
                         name="Bench Writer", now=now)  # fmt: skip
    post = create_post(db.session, title="The weekly bench", markdown=MARKDOWN, authors=[author],
                       tags=["Bench"], now=now)  # fmt: skip
    db.session.commit()
    return post.id


def time_worker(post_id: int, total: int, sink: Any, timeout: float) -> float:
    from broadsheet.content.services import load_post

    post = load_post(db.session, post_id)
    started = time.perf_counter()
    send = publish_with_email(db.session, post, actor=OPERATOR, now=utcnow())
    db.session.commit()
    assert send is not None
    assert send.recipients == total
    deadline = started + timeout
    while time.perf_counter() < deadline:
        db.session.rollback()
        sent = db.session.scalar(
            select(func.count()).where(
                Delivery.send_id == send.id, Delivery.status == DeliveryStatus.SENT
            )
        )
        if sent == total:
            return time.perf_counter() - started
        time.sleep(0.1)
    raise SystemExit(f"the worker did not finish within {timeout:.0f} s (sink has {sink.value})")


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()

    port, queue = free_port(), f"bench_newsletter_{uuid.uuid4().hex[:8]}"
    counter, ready = multiprocessing.Value("l", 0), multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, counter, ready), daemon=True)
    sink.start()
    ready.wait(30)
    name, url = create_database()
    worker: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory() as scratch:
        env = settings(url, Path(scratch) / "instance", port, queue, args.batch_size)
        try:
            app = create_app({**env, "INSTANCE_PATH": env["BROADSHEET_INSTANCE"]})
            with app.app_context():
                upgrade_schema()
                post_id = fill(args.subscribers)
                worker = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "broadsheet.worker", "worker",
                     "--loglevel", "WARNING", "--concurrency", str(args.concurrency),
                     "--pool", "prefork", "--without-gossip", "--without-mingle",
                     "--without-heartbeat", "-Q", queue],
                    env={**os.environ, **env}, start_new_session=True,
                )  # fmt: skip
                time.sleep(5)  # let the worker connect before the clock starts
                worker_seconds = time_worker(post_id, args.subscribers, counter, args.timeout)
                after_worker = counter.value
                loop_seconds, looped = time_plain_loop(post_id, port, app.config)
                assert counter.value - after_worker == looped
                db.session.remove()
                db.engine.dispose()
        finally:
            if worker is not None and worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=30)
            from kombu import Connection

            with Connection(AMQP) as connection:
                connection.default_channel.queue_delete(queue)
            drop_database(name)
            os.kill(sink.pid, signal.SIGTERM)
            sink.join(10)

    worker_rate = args.subscribers / worker_seconds
    loop_rate = looped / loop_seconds
    print(f"subscribers: {args.subscribers}; worker concurrency {args.concurrency}, "
          f"batch size {args.batch_size}; SMTP sink: aiosmtpd on 127.0.0.1")  # fmt: skip
    print(f"worker (RabbitMQ + PostgreSQL, publish to last row marked sent): "
          f"{worker_seconds:6.2f} s  {worker_rate:8.1f} messages/s")  # fmt: skip
    print(f"plain loop (one process, one SMTP connection, no database):       "
          f"{loop_seconds:6.2f} s  {loop_rate:8.1f} messages/s")  # fmt: skip
    print(f"worker / plain loop: {worker_rate / loop_rate:.2f}")


if __name__ == "__main__":
    main()
