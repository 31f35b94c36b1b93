"""The whole product as the platform runs it: the Procfile's lines under honcho.

release, web, worker and beat start against PostgreSQL, RabbitMQ and an SMTP
server on loopback, and a story is driven over HTTP only: a reader
subscribes and confirms through the site's own pages (the link read from the
SMTP server); an Admin API token publishes a post with email; the reader
receives it.  /readyz is 200, and 503 naming the broker once the app's road
to RabbitMQ is cut.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import psycopg
import pytest
import requests

from tests import services
from tests.smtp import Recorder, free_port, smtp_server  # noqa: F401 (a fixture)
from tests.tcp_proxy import TcpProxy
from tests.workers import delete_queue, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.queue


@pytest.fixture
def story_database() -> Iterator[str]:
    services.require_postgres()
    name = services.unique_name("broadsheet_story")
    with psycopg.connect(services.POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield (
        services.POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql", "postgres") + f"/{name}"
    )
    with psycopg.connect(services.POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def broker_road() -> Iterator[TcpProxy]:
    """The app's only way to RabbitMQ, which the test can cut."""
    services.require_rabbitmq()
    amqp = urlsplit(services.AMQP_URL)
    proxy = TcpProxy(amqp.hostname or "127.0.0.1", amqp.port or 5672)
    yield proxy
    proxy.cut()


def _honcho(env: dict[str, str], *processes: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [str(BIN / "honcho"), "--procfile", str(ROOT / "Procfile"), "--app-root", str(ROOT),
             "start", *processes],
            env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def _broadsheet(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "broadsheet"), *args], env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _submit(session: requests.Session, page_url: str, fields: dict[str, str]) -> Any:
    """Fill the page's first POST form as a browser would (hidden fields kept) and send it."""
    page = session.get(page_url, timeout=10)
    assert page.status_code == 200, page.text
    form = lxml.html.fromstring(page.text).xpath("//main//form[@method='post']")[0]
    values = {field.name: field.value or "" for field in form.inputs if field.name}
    values.pop("website", None)  # the honeypot stays empty, as for a person
    values.update(fields)
    return session.post(requests.compat.urljoin(page_url, form.action), data=values, timeout=10)


def test_the_procfile_runs_the_whole_story(
    tmp_path: Path,
    story_database: str,
    broker_road: TcpProxy,
    smtp_server: Recorder,  # noqa: F811
) -> None:
    port = free_port()
    site = f"http://127.0.0.1:{port}"
    queue = services.unique_name("broadsheet_story")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "CELERY_"))},
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "BROADSHEET_ENV": "production",
        "BROADSHEET_INSTANCE": str(tmp_path / "instance"),
        "SECRET_KEY": "story-secret-key-0123456789abcdef",
        "DATABASE_URL": story_database,
        "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{broker_road.port}//",
        "BROADSHEET_QUEUE": queue,
        "SITE_URL": site,
        "PORT": str(port),
        "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",  # a test server listens on loopback only
        "WEB_CONCURRENCY": "1",
        "WORKER_CONCURRENCY": "1",
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_server.port),
        "MAIL_DEFAULT_SENDER": "Broadsheet <news@example.com>",
        "PYTHONUNBUFFERED": "1",
    }
    release = _honcho(env, "release", log=tmp_path / "release.log")
    assert release.wait(timeout=120) == 0, (tmp_path / "release.log").read_text()
    _broadsheet(env, "user", "create", "ed@example.com", "--role", "editor", "--password",
                "a long enough password")  # fmt: skip
    token = _broadsheet(env, "token", "create", "ed@example.com", "--label", "story")
    log = tmp_path / "processes.log"
    processes = _honcho(env, "web", "worker", "beat", log=log)
    stack = ExitStack()
    try:
        assert wait_until(lambda: _status(f"{site}/healthz") == 200, timeout=60), log.read_text()

        # A reader subscribes and confirms through the site's own pages.
        reader = stack.enter_context(requests.Session())
        answer = _submit(reader, f"{site}/subscribe/", {"email": "reader@example.com"})
        assert answer.status_code == 200, answer.text
        assert wait_until(lambda: _mail_to(smtp_server, "reader@example.com"), timeout=60), (
            log.read_text()
        )
        confirmation = _mail_to(smtp_server, "reader@example.com")[0]
        link = re.search(rf"{re.escape(site)}/subscribe/confirm/\S+", _text(confirmation))
        assert link, _text(confirmation)
        confirmed = _submit(reader, link.group(0), {})
        assert confirmed.status_code == 200, confirmed.text

        # An Admin API token publishes a post with email.
        api = stack.enter_context(requests.Session())
        api.headers["Authorization"] = f"Bearer {token}"
        draft = {"title": "Hello from the Procfile", "markdown": "Every process in its place."}
        created = api.post(f"{site}/api/v1/admin/posts/", json=draft, timeout=10)
        assert created.status_code == 201, created.text
        post_id = created.json()["post"]["id"]
        publish = f"{site}/api/v1/admin/posts/{post_id}/publish/"
        published = api.post(publish, json={"email": True}, timeout=10)
        assert published.status_code == 200, published.text

        def delivered() -> bool:
            return any(m["Subject"] and "Hello from the Procfile" in m["Subject"]
                       for m in _mail_to(smtp_server, "reader@example.com"))  # fmt: skip

        assert wait_until(delivered, timeout=60), log.read_text()
        assert requests.get(f"{site}/hello-from-the-procfile/", timeout=10).status_code == 200
        progress = api.get(f"{site}/api/v1/admin/posts/{post_id}/send/", timeout=10).json()
        assert progress["send"]["recipients"] == 1

        ready = requests.get(f"{site}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        broker_road.cut()
        cut = requests.get(f"{site}/readyz", timeout=10)
        assert cut.status_code == 503
        assert cut.json()["broker"] != "ok"
        assert cut.json()["database"] == "ok"
    finally:
        stack.close()
        os.killpg(processes.pid, signal.SIGTERM)
        try:
            processes.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(processes.pid, signal.SIGKILL)
            processes.wait(timeout=10)
        delete_queue(services.AMQP_URL, queue)


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=3).status_code
    except requests.RequestException:
        return 0


def _mail_to(server: Recorder, address: str) -> list[Any]:
    return [r.message for r in list(server.received) if address in r.recipients]


def _text(message: Any) -> str:
    if message.is_multipart():
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                return str(part.get_payload(decode=True).decode())
    return str(message.get_payload(decode=True).decode())
