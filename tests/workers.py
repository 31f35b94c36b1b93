"""Real Celery worker processes for the queue tests, started and stopped by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from kombu import Connection

from broadsheet import create_app
from broadsheet.extensions import db
from tests import services
from tests.conftest import base_config

READY_TIMEOUT = 60


class Worker:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if any(" ready." in line for line in self.lines):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("the worker did not start:\n" + "".join(self.lines[-40:]))

    def close(self) -> None:
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    @property
    def output(self) -> str:
        return "".join(self.lines)


def worker_env(
    instance: Path,
    database_url: str,
    broker_url: str,
    queue: str,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    return {
        **os.environ,
        "BROADSHEET_INSTANCE": str(instance),
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "BROADSHEET_QUEUE": queue,
        "SECRET_KEY": "test-secret-key-0123456789",
        "MAIL_BACKEND": "memory",
        **(extra or {}),
    }


@contextmanager
def running_worker(
    instance: Path,
    database_url: str,
    broker_url: str,
    queue: str,
    concurrency: int = 1,
    env: Mapping[str, str] | None = None,
    beat: bool = False,
    app_module: str = "broadsheet.worker",
) -> Iterator[Worker]:
    """A ``celery worker`` process of our app on ``queue``; stopped (and reaped) on exit.

    ``env`` adds settings; ``beat`` runs the beat inside the worker (``-B``);
    ``app_module`` names another module exposing the Celery app.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app_module, "worker",
         "--loglevel", "INFO", "--concurrency", str(concurrency), "--pool", "prefork",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue,
         # A node name of its own: RabbitMQ locks each node's control queue to one worker.
         "-n", f"test-{uuid.uuid4().hex[:12]}@%h",
         *(["-B"] if beat else [])],
        env=worker_env(instance, database_url, broker_url, queue, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    worker = Worker(process)
    try:
        worker.wait_ready()
        yield worker
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        worker.close()


def delete_queue(broker_url: str, queue: str) -> None:
    """Remove a test's queue from the broker so nothing is left behind."""
    with Connection(broker_url, connect_timeout=5) as connection:
        channel = connection.default_channel
        with suppress(Exception):  # already gone is fine
            channel.queue_delete(queue)


def empty_queue(broker_url: str, queue: str, timeout: float = 15.0) -> None:
    """Drop every message waiting in ``queue`` and make sure none is left: a busy broker
    (the embedded one's SQLite file, locked by another connection) is tried again."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Connection(broker_url, connect_timeout=5) as connection:
                channel = connection.default_channel
                channel.queue_purge(queue)
                if channel.queue_declare(queue, passive=True).message_count == 0:
                    return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"messages are still waiting in {queue}")
        time.sleep(0.2)


def wait_until(predicate: object, timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False


@dataclass
class WebOnBroker:
    """The web side of a queue test: an app of its own that sends to ``queue`` on a broker."""

    web: Flask
    database_url: str
    broker_url: str
    queue: str


@contextmanager
def web_on_broker(
    app: Flask, database_url: str, broker: str, tmp_path: Path, name: str, **config: Any
) -> Iterator[WebOnBroker]:
    """A web app on ``broker`` ("rabbitmq", required, or "embedded": a SQLite broker file in
    ``tmp_path``) and a queue of its own, current for Celery while the test runs; afterwards
    the test's own app is current again and the queue is deleted."""
    if broker == "rabbitmq":
        services.require_rabbitmq()
        broker_url = services.AMQP_URL
    else:
        broker_url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    queue = services.unique_name(name)
    web = create_app(
        base_config(tmp_path / "web", database_url, CELERY_BROKER_URL=broker_url,
                    BROADSHEET_QUEUE=queue, **config)
    )  # fmt: skip
    web.extensions["celery"].set_current()
    try:
        with web.app_context():
            yield WebOnBroker(web, database_url, broker_url, queue)
            db.session.remove()
            db.engine.dispose()
    finally:
        app.extensions["celery"].set_current()
        delete_queue(broker_url, queue)
