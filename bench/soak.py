"""Soak: mixed traffic for ten minutes while PostgreSQL and RabbitMQ are each restarted once.

Everything runs on 127.0.0.1 and belongs to this run: a PostgreSQL cluster
of its own (``initdb`` into a temporary folder, run as the ``postgres`` OS
user) and a RabbitMQ node of its own (its own node name, ports and data
folder, no plugins), so the machine's shared servers are never touched.
On them, Broadsheet runs as in production: gunicorn with the project's
gunicorn.conf.py (2 processes of 4 threads), a ``celery worker``
(concurrency 2, as the Procfile) and ``celery beat``, mail going to an SMTP
sink (aiosmtpd, in a process of its own) that records each message's
recipient and Message-ID.

The database holds ``broadsheet demo`` content and its subscribers, trimmed
so that a post without tags goes to exactly 20,000 of them.  Then, for
``--minutes`` (default 10):

- readers fetch the home page, pages, posts, tags, authors, archives,
  feeds, the sitemap and the Content API (every URL drawn from the data);
- readers subscribe, through the form and the API, each from an address
  of its own (``X-Forwarded-For``, with ``PROXY_HOPS=1``);
- staff write through the Admin API with a token from ``broadsheet token
  create`` (create, edit with If-Match, publish, unpublish) and browse the
  admin with a signed-in session;
- at a tenth of the run (minute 1 of 10) the newsletter post is published
  with email to the 20,000;
- RabbitMQ is stopped, left down 10 s and started again; later PostgreSQL
  is too (``pg_ctl stop -m fast``; start).

It prints (and writes to bench/results/soak-<date>.md): 5xx responses
outside the outage windows (target 0); seconds from each service's return
to the first good response that needed it (target <= 5); the web's and the
worker's memory (PSS, and RSS summed, of each whole process tree) at the
fifth of the run (minute 2 of 10) and at the end (growth <= 10%); and the
newsletter's emails missing and duplicated, counted at the sink by
Message-ID (0 missing; duplicates at most one per worker process that died
mid-task, which Celery does when the broker goes away under a late-acked
task; counted from the worker's log).

    make soak                                   # or: .venv/bin/python bench/soak.py
    .venv/bin/python bench/soak.py --minutes 2  # the short run

Needs to run as root (to start the servers as their own OS users), with
PostgreSQL's and RabbitMQ's Debian packages installed.  Every server and
process started here is stopped, and every folder removed, on the way out,
Ctrl-C included; every traffic loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import multiprocessing
import os
import pickle
import platform
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests
from newsletter_send import memory_kb, process_tree  # sibling scripts: bench/ is on sys.path
from run_bench import free_port, gunicorn

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = ROOT / "bench" / "results"
SECRET = secrets.token_hex(32)  # a throwaway database: nothing signed outlives the run
OWNER = "owner@soak.example.com"
RECIPIENTS = 20_000
DEMO = {"posts": 3000, "tags": 200, "authors": 6, "subscribers": 32_000}
OUTAGE_SECONDS = 10.0
RECOVERY_TARGET = 5.0
MEMORY_GROWTH_TARGET = 0.10
REQUEST_TIMEOUT = 15.0
START_TIMEOUT = 90.0
DRAIN_TIMEOUT = 900.0  # after the traffic, for the send to finish
READERS = 3  # threads of anonymous readers
READ_PAUSE = 0.05  # between one reader's requests: a shared 2-core machine
MAX_REQUESTS_PER_THREAD = 200_000
PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
NEWSLETTER_MESSAGE_ID = re.compile(r"<post-(\d+)\.sub-(\d+)@")


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def run(args: list[str], *, timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:6])} failed:\n{done.stdout}{done.stderr}"[-4000:])
    return done.stdout


# The private servers ------------------------------------------------------------------------


class PrivatePostgres:
    """A cluster of this run's own in ``folder`` (owned by the ``postgres`` OS user)."""

    def __init__(self, folder: Path) -> None:
        if not PG_BIN:
            raise SystemExit("PostgreSQL's server binaries are not in /usr/lib/postgresql")
        self.bin = Path(PG_BIN[-1])
        self.folder, self.data, self.port = folder, folder / "data", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(folder, "postgres", "postgres")
        self._as_postgres(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8", "--locale", "C.UTF-8", timeout=120,
        )  # fmt: skip
        self.running = False

    def _as_postgres(self, tool: str, *args: str, timeout: float) -> str:
        return run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
                   timeout=timeout)  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w",
            "-t", "60", "-o", options, "start", timeout=90,
        )  # fmt: skip
        self.running = True

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-m", "fast",
                          "stop", timeout=90)  # fmt: skip
        self.running = False

    def close(self) -> None:
        if self.running:
            with suppress(SystemExit, subprocess.TimeoutExpired):
                self.stop()
        if self.running:  # a fast stop that did not finish: immediate
            with suppress(SystemExit, subprocess.TimeoutExpired):
                self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop",
                                  timeout=60)  # fmt: skip


class PrivateRabbit:
    """A RabbitMQ node of this run's own (name, ports, data), as the ``rabbitmq`` OS user."""

    def __init__(self, folder: Path) -> None:
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise SystemExit(f"RabbitMQ's server is not in {RABBIT_BIN}")
        self.folder, self.port, dist = folder, free_port(), free_port()
        self.node = f"soak-{os.getpid()}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        for sub in ("mnesia", "log"):
            (folder / sub).mkdir()
        (folder / "enabled_plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(folder)], check=True, timeout=30)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": "/var/lib/rabbitmq",  # the shared Erlang cookie, for rabbitmqctl
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def _ctl(self, *args: str, timeout: float) -> str:
        return run(
            ["runuser", "-u", "rabbitmq", "--", str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node,
             *args],
            env=self.env, timeout=timeout,
        )  # fmt: skip

    def start(self) -> None:
        with (self.folder / "server.out").open("ab") as out:
            self.process = subprocess.Popen(
                ["runuser", "-u", "rabbitmq", "--", str(RABBIT_BIN / "rabbitmq-server")],
                env=self.env, cwd="/var/lib/rabbitmq", stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with suppress(SystemExit, subprocess.TimeoutExpired):
                self._ctl("await_startup", "--timeout", "5", timeout=15)
                return
            time.sleep(0.5)
        out = (self.folder / "server.out").read_text(errors="replace")[-3000:]
        raise SystemExit(f"the private RabbitMQ node did not start:\n{out}")

    def stop(self) -> None:
        self._ctl("stop", timeout=90)
        if self.process is not None:
            self.process.wait(timeout=60)
            self.process = None

    def close(self) -> None:
        if self.process is None:
            return
        with suppress(SystemExit, subprocess.TimeoutExpired):
            self.stop()
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


# The SMTP sink ------------------------------------------------------------------------------


def run_sink(port: int, path: str, ready: Any) -> None:
    """Accepts everything; one line per recipient: time, recipient, Message-ID, Subject."""
    from email.parser import BytesHeaderParser

    from aiosmtpd.controller import Controller

    out = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed on SIGTERM below)

    class Record:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            headers = BytesHeaderParser().parsebytes(envelope.original_content or b"")
            message_id = str(headers.get("Message-ID", "")).strip()
            subject = str(headers.get("Subject", "")).replace("\t", " ")[:80]
            now = time.time()
            for recipient in envelope.rcpt_tos:
                out.write(f"{now:.3f}\t{recipient.lower()}\t{message_id}\t{subject}\n")
            out.flush()
            return "250 OK"

    controller = Controller(Record(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    signal.sigwait({signal.SIGTERM})
    controller.stop()
    out.close()


@dataclass
class Mail:
    at: float
    recipient: str
    message_id: str
    subject: str


@contextmanager
def smtp_sink(path: Path) -> Iterator[int]:
    port = free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, str(path), ready), daemon=True)
    sink.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        yield port
    finally:
        if sink.pid and sink.is_alive():
            os.kill(sink.pid, signal.SIGTERM)
        sink.join(10)
        if sink.is_alive():
            sink.kill()


def read_mail(path: Path) -> list[Mail]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        at, recipient, message_id, subject = [*line.split("\t"), "", "", ""][:4]
        found.append(Mail(float(at), recipient, message_id, subject))
    return found


# Broadsheet's processes ---------------------------------------------------------------------


@contextmanager
def process_group(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[int]:
    """``args`` in a session of its own, output to ``log_path``; its pid.  Stopped on exit."""
    with log_path.open("w") as out:
        process = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process.pid
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_for_line(log_path: Path, text: str, pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if text in log_path.read_text(errors="replace"):
            return
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.3)
    raise SystemExit(f"{log_path.name}: no {text!r}:\n{log_path.read_text()[-3000:]}")


def gunicorn_master(port: int) -> int:
    """The gunicorn master serving ``port``: its workers share its command line."""
    bind = f"127.0.0.1:{port}"
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if bind.encode() in argv and any(b"gunicorn" in a for a in argv):
                stat = (entry / "stat").read_text()
                found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    masters = [pid for pid, parent in found.items() if parent not in found]
    if len(masters) != 1:
        raise SystemExit(f"could not tell gunicorn's master on {bind}: {found}")
    return masters[0]


@dataclass(frozen=True)
class Memory:
    pss_mb: float
    rss_mb: float
    processes: int
    each_pss_mb: tuple[float, ...] = ()  # the root first, then its children


def tree_memory(root: int) -> Memory:
    sizes = [memory_kb(pid) for pid in process_tree(root)]
    return Memory(
        sum(pss for _, pss in sizes) / 1024, sum(rss for rss, _ in sizes) / 1024, len(sizes),
        tuple(pss / 1024 for _, pss in sizes),
    )  # fmt: skip


# Traffic ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    at: float  # epoch seconds when the request started
    kind: str  # read, subscribe, admin-api, admin-page, probe-db, readyz, publish
    path: str
    status: int  # 0: no answer (connection refused, reset or timed out)
    seconds: float


@dataclass
class Traffic:
    base: str
    token: str
    deadline: float
    urls: list[str]
    hits: list[Hit] = field(default_factory=list)
    subscribed: dict[str, float] = field(default_factory=dict)  # address -> when answered 2xx
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    notes: list[str] = field(default_factory=list)

    def request(self, http: requests.Session, kind: str, method: str, path: str,
                **kwargs: Any) -> requests.Response | None:  # fmt: skip
        started, clock = time.time(), time.perf_counter()
        response: requests.Response | None
        try:
            response = http.request(
                method, self.base + path, timeout=REQUEST_TIMEOUT, allow_redirects=False,
                **kwargs,
            )  # fmt: skip
            status = response.status_code
        except requests.RequestException:
            response, status = None, 0
        with self.lock:
            self.hits.append(Hit(started, kind, path, status, time.perf_counter() - clock))
        return response

    def loop(self, body: Callable[[int], None], pause: float) -> None:
        """``body(n)`` until the end of the run, with ``pause`` between; bounded in count."""
        for n in range(MAX_REQUESTS_PER_THREAD):
            if self.stop.is_set() or time.time() >= self.deadline:
                return
            try:
                body(n)
            except Exception as exc:  # a bug in the soak itself: say so, keep the others going
                with self.lock:
                    self.notes.append(f"traffic thread error: {exc!r}")
                return
            self.stop.wait(pause)

    def admin_headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}


def reader(traffic: Traffic, seed: int) -> None:
    http, rng = requests.Session(), random.Random(seed)
    traffic.loop(lambda _: traffic.request(http, "read", "GET", rng.choice(traffic.urls)),
                 READ_PAUSE)  # fmt: skip


def subscriber(traffic: Traffic) -> None:
    """A new reader every ~3 s, each from an address of its own, by the form or the API."""
    http = requests.Session()

    def once(n: int) -> None:
        address = f"soak-reader-{os.getpid()}-{n}@example.org"
        ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255 or 1}"
        headers = {"X-Forwarded-For": ip}
        if n % 2:
            response = traffic.request(http, "subscribe", "POST", "/api/v1/subscribers/",
                                       json={"email": address}, headers=headers)  # fmt: skip
        else:
            response = traffic.request(http, "subscribe", "POST", "/subscribe/",
                                       data={"email": address}, headers=headers)  # fmt: skip
        if response is not None and response.status_code in (200, 202):
            with traffic.lock:
                traffic.subscribed[address] = time.time()

    traffic.loop(once, 3.0)


def editor(traffic: Traffic, seed: int) -> None:
    """Admin API writes: drafts created, edited (If-Match), published and taken back."""
    http, rng = requests.Session(), random.Random(seed)
    mine: list[int] = []

    def once(n: int) -> None:
        if not mine or n % 5 == 0:
            response = traffic.request(
                http, "admin-api", "POST", "/api/v1/admin/posts/",
                json={"title": f"Soak draft {n}", "markdown": f"Body {n}\n\n*soak*",
                      "tags": ["Soak", f"soak-{n % 7}"]},
                headers=traffic.admin_headers(),
            )  # fmt: skip
            if response is not None and response.status_code == 201:
                mine.append(int(response.json()["post"]["id"]))
            return
        post_id = rng.choice(mine)
        path = f"/api/v1/admin/posts/{post_id}/"
        response = traffic.request(http, "admin-api", "GET", path,
                                   headers=traffic.admin_headers())  # fmt: skip
        if response is None or response.status_code != 200:
            return
        etag, status = response.headers.get("ETag", ""), response.json()["post"]["status"]
        action = rng.random()
        if action < 0.5:
            traffic.request(
                http, "admin-api", "PATCH", path,
                json={"markdown": f"Edited {n}: {secrets.token_hex(8)}\n\nMore *soak*."},
                headers=traffic.admin_headers(**{"If-Match": etag}),
            )  # fmt: skip
        elif status != "published":
            traffic.request(http, "admin-api", "POST", path + "publish/", json={},
                            headers=traffic.admin_headers())  # fmt: skip
        else:
            traffic.request(http, "admin-api", "POST", path + "unpublish/",
                            headers=traffic.admin_headers())  # fmt: skip

    traffic.loop(once, 1.0)


ADMIN_PAGES = ("/admin/", "/admin/posts/", "/admin/tags/", "/admin/staff/", "/admin/settings/")


def admin_browser(traffic: Traffic, password: str) -> None:
    """Signs in once, then walks the admin's pages."""
    http = requests.Session()
    form = traffic.request(http, "admin-page", "GET", "/admin/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text if form else "")
    signed = traffic.request(
        http, "admin-page", "POST", "/admin/login",
        data={"email": OWNER, "password": password, "csrf_token": token.group(1) if token else ""},
    )  # fmt: skip
    if signed is None or signed.status_code != 302:
        with traffic.lock:
            traffic.notes.append(f"admin sign-in answered {signed and signed.status_code}")
        return
    pages = itertools.cycle(ADMIN_PAGES)
    traffic.loop(lambda _: traffic.request(http, "admin-page", "GET", next(pages)), 2.0)


def probes(traffic: Traffic) -> None:
    """What measures each service's return: an uncached, database-bound Admin API read twice a
    second, and /readyz (the database and the broker, each on a fresh connection) every second.
    """
    http = requests.Session()

    def once(n: int) -> None:
        traffic.request(http, "probe-db", "GET", "/api/v1/admin/posts/?limit=1",
                        headers=traffic.admin_headers())  # fmt: skip
        if n % 2 == 0:
            traffic.request(http, "readyz", "GET", "/readyz")

    traffic.loop(once, 0.5)


# The data -----------------------------------------------------------------------------------


def server_env(database: str, broker: str, smtp_port: int, instance: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PORT", "PAGE_CACHE_URL")}
    env.update(
        BROADSHEET_ENV="production",
        DATABASE_URL=database,
        SECRET_KEY=SECRET,
        SITE_URL="http://127.0.0.1",
        CELERY_BROKER_URL=broker,
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=str(smtp_port),
        BROADSHEET_INSTANCE=str(instance),
        PROXY_HOPS="1",  # readers come "from" addresses of their own, via X-Forwarded-For
        WEB_CONCURRENCY="2",
        GUNICORN_THREADS="4",
    )
    return env


def broadsheet(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    return run([str(BIN / "broadsheet"), *args], env=env, timeout=timeout)


ELIGIBLE = """
    SELECT s.id, s.email FROM subscribers s
    WHERE s.status = 'confirmed' AND s.confirmed_at <= %(at)s
      AND NOT EXISTS (SELECT 1 FROM subscriber_tags st WHERE st.subscriber_id = s.id)
    ORDER BY s.id
"""


def prepare(database: str, env: dict[str, str]) -> tuple[str, str]:
    """Schema, owner, demo content, the list trimmed to RECIPIENTS; a token and a password."""
    password = secrets.token_urlsafe(16)
    broadsheet(env, "init", "--owner-email", OWNER, "--owner-password", password)
    log("broadsheet demo " + " ".join(f"--{k} {v}" for k, v in DEMO.items()) + " …")
    broadsheet(env, "demo", *itertools.chain(*((f"--{k}", str(v)) for k, v in DEMO.items())))
    token = broadsheet(env, "token", "create", OWNER, "--label", "soak").strip().splitlines()[-1]
    with psycopg.connect(database, autocommit=True) as connection:
        now = datetime.now(UTC)
        eligible = [row[0] for row in connection.execute(ELIGIBLE, {"at": now})]
        if len(eligible) < RECIPIENTS:
            raise SystemExit(f"only {len(eligible)} subscribers would get a post without tags")
        # The list a post without tags goes to: exactly RECIPIENTS readers.
        connection.execute(
            "UPDATE subscribers SET status = 'unsubscribed', unsubscribed_at = %s "
            "WHERE id = ANY(%s)",
            (now, eligible[RECIPIENTS:]),
        )
        connection.execute("VACUUM ANALYZE")
    return token, password


def newsletter_post(base: str, token: str) -> int:
    response = requests.post(
        base + "/api/v1/admin/posts/",
        json={"title": "The soak's newsletter", "markdown": "Sent to twenty thousand readers."},
        headers={"Authorization": f"Bearer {token}"},
        timeout=REQUEST_TIMEOUT,
    )
    if response.status_code != 201:
        raise SystemExit(f"creating the newsletter post answered {response.status_code}")
    return int(response.json()["post"]["id"])


def read_urls(database: str) -> list[str]:
    """Many public URLs, drawn from the data: a reader's spread over the site."""
    with psycopg.connect(database) as connection:

        def column(sql: str) -> list[Any]:
            return [row[0] for row in connection.execute(sql)]  # type: ignore[arg-type]

        posts = column("SELECT slug FROM posts WHERE kind = 'post' AND status = 'published' "
                       "ORDER BY random() LIMIT 400")  # fmt: skip
        pages = column("SELECT slug FROM posts WHERE kind = 'page' AND status = 'published'")
        ids = column("SELECT id FROM posts WHERE kind = 'post' AND status = 'published' "
                     "ORDER BY random() LIMIT 100")  # fmt: skip
        tags = connection.execute(
            "SELECT t.slug, count(pt.post_id) FROM tags t LEFT JOIN post_tags pt "
            "ON pt.tag_id = t.id AND pt.published_at IS NOT NULL WHERE t.name NOT LIKE '#%' "
            "GROUP BY t.slug ORDER BY random() LIMIT 80"
        ).fetchall()
        authors = column("SELECT slug FROM users WHERE slug IS NOT NULL")
        years = column("SELECT DISTINCT extract(year FROM published_at)::int FROM posts "
                       "WHERE status = 'published' LIMIT 5")  # fmt: skip
    urls = ["/", "/page/2/", "/page/5/", "/page/40/", "/feed/", "/feed/atom/", "/feed.json",
            "/sitemap.xml", "/robots.txt", "/subscribe/", "/api/v1/posts/",
            "/api/v1/posts/?page=3", "/api/v1/posts/?order=oldest", "/api/v1/tags/",
            "/api/v1/authors/", "/healthz"]  # fmt: skip
    urls += [f"/{slug}/" for slug in posts + pages]
    urls += [f"/api/v1/posts/slug/{slug}/" for slug in posts[:100]]
    urls += [f"/api/v1/posts/{post_id}/" for post_id in ids]
    for slug, count in tags:
        urls += [f"/tag/{slug}/", f"/tag/{slug}/feed/", f"/api/v1/tags/{slug}/",
                 f"/api/v1/posts/?tag={slug}"]  # fmt: skip
        if count > 40:  # a second page for sure
            urls.append(f"/tag/{slug}/page/2/")
    for slug in authors:
        urls += [f"/author/{slug}/", f"/author/{slug}/feed/", f"/api/v1/authors/{slug}/"]
    urls += [f"/{year}/" for year in years]
    return urls


# The run ------------------------------------------------------------------------------------


@dataclass
class Outage:
    service: str
    stopped_at: float = 0.0  # the stop was asked for
    back_at: float = 0.0  # the start returned: the service accepts connections
    sending: bool = False  # the newsletter was still going out when it stopped


def restart(service: str, stop: Callable[[], None], start: Callable[[], None],
            sending: bool) -> Outage:  # fmt: skip
    outage = Outage(service, sending=sending)
    log(f"{service}: stopping (down for {OUTAGE_SECONDS:.0f} s) …")
    outage.stopped_at = time.time()
    stop()
    time.sleep(OUTAGE_SECONDS)
    start()
    outage.back_at = time.time()
    log(f"{service}: back, {outage.back_at - outage.stopped_at:.1f} s after the stop")
    return outage


def send_state(database: str, post_id: int) -> tuple[str, dict[str, int]] | None:
    try:
        with psycopg.connect(database, connect_timeout=5) as connection:
            row = connection.execute(
                "SELECT id, status FROM newsletter_sends WHERE post_id = %s", (post_id,)
            ).fetchone()
            if row is None:
                return None
            counts = dict(connection.execute(  # type: ignore[arg-type]
                "SELECT status::text, count(*) FROM newsletter_deliveries WHERE send_id = %s "
                "GROUP BY status", (row[0],),
            ).fetchall())  # fmt: skip
            return str(row[1]), {k: int(v) for k, v in counts.items()}
    except psycopg.OperationalError:
        return None


def sleep_until(at: float, stop: threading.Event) -> None:
    stop.wait(max(0.0, at - time.time()))


@dataclass
class Result:
    minutes: float
    hits: list[Hit]
    outages: list[Outage]
    memory: dict[str, tuple[Memory, Memory]]
    publish_status: int
    publish_seconds: float
    published_at: float
    send: tuple[str, dict[str, int]] | None
    send_finished: float | None
    expected: dict[int, str]
    mail: list[Mail]
    post_id: int
    subscribed: dict[str, float]
    notes: list[str]
    versions: list[str]
    killed: int  # worker pool processes ended mid-task (each may send one message twice)
    unqueued: int = 0  # tasks the web could not hand to the broker
    confirm_failures: int = 0  # confirmation tasks that raised and were not retried


def soak(minutes: float, keep: Path | None) -> Result:
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="broadsheet-soak-")))
        folder.chmod(0o755)  # the servers' own users reach their folders inside it
        pg_dir, mq_dir, instance = folder / "pg", folder / "mq", folder / "instance"
        for sub in (pg_dir, mq_dir, instance):
            sub.mkdir()
        log("Starting a private PostgreSQL cluster and a private RabbitMQ node …")
        postgres = PrivatePostgres(pg_dir)
        stack.callback(postgres.close)
        postgres.start()
        rabbit = PrivateRabbit(mq_dir)
        stack.callback(rabbit.close)
        rabbit.start()
        log(f"PostgreSQL on 127.0.0.1:{postgres.port}, RabbitMQ {rabbit.node} on "
            f"127.0.0.1:{rabbit.port}")  # fmt: skip
        with psycopg.connect(postgres.url, autocommit=True) as connection:
            connection.execute('CREATE DATABASE "broadsheet_soak"')
            server_version = connection.execute("SHOW server_version").fetchone()
        database = postgres.url.rsplit("/", 1)[0] + "/broadsheet_soak"
        mail_log = folder / "mail.tsv"
        mail_log.touch()
        smtp_port = stack.enter_context(smtp_sink(mail_log))
        env = server_env(database, rabbit.url, smtp_port, instance)
        token, password = prepare(database, env)
        urls = read_urls(database)

        worker = stack.enter_context(process_group(
            [str(BIN / "celery"), "--app", "broadsheet.worker", "worker", "--concurrency", "2",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
             "-n", f"soak-{os.getpid()}@%h"],
            env, folder / "worker.log",
        ))  # fmt: skip
        stack.enter_context(process_group(
            [str(BIN / "celery"), "--app", "broadsheet.worker", "beat", "--schedule",
             str(folder / "celerybeat-schedule"), "--loglevel", "INFO"],
            env, folder / "beat.log",
        ))  # fmt: skip
        wait_for_line(folder / "worker.log", " ready.", worker)
        port = stack.enter_context(
            gunicorn("broadsheet:create_app()", env, folder / "web.log", ready="/")
        )
        web = gunicorn_master(port)
        base = f"http://127.0.0.1:{port}"
        post_id = newsletter_post(base, token)
        log(f"Serving {len(urls)} public URLs on {base}; web pid {web}, worker pid {worker}")

        started = time.time()
        end = started + minutes * 60
        traffic = Traffic(base, token, end, urls)
        threads = [threading.Thread(target=reader, args=(traffic, n)) for n in range(READERS)]
        threads += [threading.Thread(target=subscriber, args=(traffic,)),
                    threading.Thread(target=editor, args=(traffic, 99)),
                    threading.Thread(target=admin_browser, args=(traffic, password)),
                    threading.Thread(target=probes, args=(traffic,))]  # fmt: skip
        for thread in threads:
            thread.daemon = True
            thread.start()

        def stop_traffic() -> None:
            traffic.stop.set()
            for thread in threads:
                thread.join(REQUEST_TIMEOUT + 5)

        stack.callback(stop_traffic)
        log(f"Traffic for {minutes:g} minutes …")
        outages: list[Outage] = []

        sleep_until(started + minutes * 60 * 0.1, traffic.stop)
        log(f"Publishing post {post_id} with email to {RECIPIENTS:,} subscribers …")
        published_at, clock = time.time(), time.perf_counter()
        answer = traffic.request(requests.Session(), "publish", "POST",
                                 f"/api/v1/admin/posts/{post_id}/publish/", json={"email": True},
                                 headers=traffic.admin_headers())  # fmt: skip
        publish_seconds = time.perf_counter() - clock
        publish_status = answer.status_code if answer is not None else 0
        log(f"The publish answered {publish_status} in {publish_seconds:.2f} s")

        sleep_until(started + minutes * 60 * 0.2, traffic.stop)
        memory_at_fifth = {"web": tree_memory(web), "worker": tree_memory(worker)}
        log("Memory at the fifth of the run: " + ", ".join(
            f"{k} {m.pss_mb:.0f} MB PSS" for k, m in memory_at_fifth.items()))  # fmt: skip
        sleep_until(started + minutes * 60 * 0.25, traffic.stop)
        sending = (send_state(database, post_id) or ("?", {}))[0] == "sending"
        outages.append(restart("RabbitMQ", rabbit.stop, rabbit.start, sending))
        sleep_until(max(started + minutes * 60 * 0.4, time.time() + 15), traffic.stop)
        sending = (send_state(database, post_id) or ("?", {}))[0] == "sending"
        outages.append(restart("PostgreSQL", postgres.stop, postgres.start, sending))

        sleep_until(end, traffic.stop)
        memory_at_end = {"web": tree_memory(web), "worker": tree_memory(worker)}
        stop_traffic()
        log("Traffic over; waiting for the send to finish …")
        send, finished = None, None
        drain_deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < drain_deadline:
            send = send_state(database, post_id)
            if send is not None and send[0] != "sending":
                finished = time.time()
                break
            time.sleep(2)
        time.sleep(3)  # the last messages' lines reach the sink's file
        with psycopg.connect(database) as connection:
            created = connection.execute(
                "SELECT created_at FROM newsletter_sends WHERE post_id = %s", (post_id,)
            ).fetchone()
            expected = (
                {int(r[0]): str(r[1]) for r in connection.execute(ELIGIBLE, {"at": created[0]})}
                if created else {}
            )  # fmt: skip
        versions = [f"Python {platform.python_version()}",
                    f"PostgreSQL {server_version[0] if server_version else '?'}",
                    f"RabbitMQ {rabbit_version()}"]  # fmt: skip
        for name in ("worker.log", "beat.log", "web.log"):
            errors = [line for line in (folder / name).read_text(errors="replace").splitlines()
                      if "Traceback" in line or "CRITICAL" in line]  # fmt: skip
            if errors:
                traffic.notes.append(f"{name}: {len(errors)} lines with a traceback")
        killed = killed_processes((folder / "worker.log").read_text(errors="replace"))
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
            for name in ("worker.log", "beat.log", "web.log", "mail.tsv", "pg/server.log"):
                shutil.copy(folder / name, keep / name.replace("/", "-"))
        return Result(
            minutes=minutes, hits=list(traffic.hits), outages=outages,
            memory={k: (memory_at_fifth[k], memory_at_end[k]) for k in memory_at_end},
            publish_status=publish_status, publish_seconds=publish_seconds,
            published_at=published_at, send=send, send_finished=finished, expected=expected,
            mail=read_mail(mail_log), post_id=post_id, subscribed=dict(traffic.subscribed),
            notes=traffic.notes, versions=versions, killed=killed,
            unqueued=(folder / "web.log").read_text(errors="replace").count("could not enqueue"),
            confirm_failures=len(re.findall(
                r"send_(?:subscriber_email|confirmations)\[[^]]*\] raised unexpected",
                (folder / "worker.log").read_text(errors="replace"))),
        )  # fmt: skip
    raise AssertionError("unreachable")


def killed_processes(worker_log: str) -> int:
    """Pool processes that died or were terminated mid-task, from the worker's log.

    Celery terminates a task it can no longer acknowledge (late acks) when the connection to
    the broker is lost, and logs each pool process that exits on a signal.
    """
    terminated = worker_log.count("cannot be acknowledged after a connection loss")
    signalled = len(re.findall(r"pid:\d+ exited with 'signal", worker_log))
    return max(terminated, signalled)


def rabbit_version() -> str:
    found = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "rabbitmq-server"],
                           capture_output=True, text=True, timeout=10, check=False)  # fmt: skip
    return found.stdout.strip() or "?"


# Reporting ----------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def recovery(result: Result, outage: Outage) -> list[tuple[str, float | None]]:
    """Seconds from the service's return to the first good response that needed it: the
    web's (PostgreSQL: an uncached Admin API read through its pool; RabbitMQ: /readyz, which
    asks the broker) and the worker's (the first email it hands to the sink afterwards)."""
    if outage.service == "PostgreSQL":
        web = [h.at + h.seconds for h in result.hits
               if h.kind == "probe-db" and h.status == 200 and h.at >= outage.back_at]  # fmt: skip
        what = "web: first Admin API read answered 200"
    else:
        web = [h.at + h.seconds for h in result.hits
               if h.kind == "readyz" and h.status == 200 and h.at >= outage.back_at]  # fmt: skip
        what = "web: first /readyz answered 200"
    mails = [m.at for m in result.mail if m.at >= outage.back_at]
    return [
        (what, min(web) - outage.back_at if web else None),
        ("worker: first email at the sink", min(mails) - outage.back_at if mails else None),
    ]


def report(result: Result) -> list[str]:
    hits, outages = result.hits, result.outages

    def during(hit: Hit) -> str | None:
        """The outage the request overlapped, if any."""
        for outage in outages:
            if hit.at <= outage.back_at and hit.at + hit.seconds >= outage.stopped_at:
                return outage.service
        return None

    # /readyz answers 503 while a service is down: that is its job, not an error.
    server_errors = [h for h in hits if h.status >= 500 and h.kind != "readyz"]
    outside = [h for h in server_errors if during(h) is None]
    unanswered_outside = [h for h in hits if h.status == 0 and during(h) is None]
    by_kind = Counter(h.kind for h in hits)
    statuses = Counter((h.kind, h.status) for h in hits)
    lines = [
        f"# Broadsheet soak, {datetime.fromtimestamp(result.hits[0].at if hits else 0, UTC):%Y-%m-%d %H:%M} UTC",  # noqa: E501
        "",
        f"- {result.minutes:g} minutes; machine: {os.cpu_count()} CPUs ({platform.machine()}), "
        f"load average {os.getloadavg()[0]:.2f} at the end (shared with other work)",
        "- Servers, all private to the run on 127.0.0.1: a PostgreSQL cluster (initdb) and a "
        "RabbitMQ node of their own; gunicorn.conf.py (2 processes x 4 threads, production), "
        "`celery worker --concurrency 2`, `celery beat`; SMTP sink: aiosmtpd",
        f"- Versions: {', '.join(result.versions)}",
        f"- Requests: {len(hits):,} ("
        + ", ".join(f"{kind} {count:,}" for kind, count in sorted(by_kind.items())) + ")",
        "- Statuses: " + ", ".join(
            f"{kind} {status or 'no answer'}: {count:,}"
            for (kind, status), count in sorted(statuses.items())),
        "",
        "| figure | value | target | |",
        "| --- | --- | --- | :---: |",
        f"| 5xx responses outside the outage windows | {len(outside)} | 0 "
        f"| {_met(not outside)} |",
    ]  # fmt: skip
    for outage in outages:
        inside = [h for h in server_errors if during(h) == outage.service]
        unanswered = [h for h in hits if h.status == 0 and during(h) == outage.service]
        lines.append(
            f"| {outage.service} down ({outage.back_at - outage.stopped_at:.0f} s from "
            f"+{outage.stopped_at - (hits[0].at if hits else 0):.0f} s, "
            f"{'during' if outage.sending else 'not during'} the send): 5xx / no answer "
            f"inside the window (/readyz aside) | {len(inside)} / {len(unanswered)} | | |"
        )
        for what, seconds in recovery(result, outage):
            shown = f"{seconds:.1f} s" if seconds is not None else "never"
            lines.append(
                f"| {outage.service}'s return to the {what} | {shown} | ≤ "
                f"{RECOVERY_TARGET:.0f} s | {_met(seconds is not None and seconds <= 5)} |"
            )
    for name, (first, last) in result.memory.items():
        growth = last.pss_mb / first.pss_mb - 1 if first.pss_mb else 0.0
        lines.append(
            f"| {name} memory, whole tree ({last.processes} processes): PSS at the fifth → end "
            f"(RSS summed) | {first.pss_mb:.0f} → {last.pss_mb:.0f} MB ({growth:+.1%}) "
            f"({first.rss_mb:.0f} → {last.rss_mb:.0f} MB) | growth ≤ 10% "
            f"| {_met(growth <= MEMORY_GROWTH_TARGET)} |"
        )
    prefix = f"<post-{result.post_id}."
    received = Counter(
        int(m.group(2)) for mail in result.mail if mail.message_id.startswith(prefix)
        if (m := NEWSLETTER_MESSAGE_ID.match(mail.message_id))
    )  # fmt: skip
    wrong_address = sum(
        1 for mail in result.mail if (m := NEWSLETTER_MESSAGE_ID.match(mail.message_id))
        and mail.message_id.startswith(prefix)
        and result.expected.get(int(m.group(2)), "").lower() != mail.recipient
    )  # fmt: skip
    missing = [sid for sid in result.expected if sid not in received]
    duplicates = sum(count - 1 for count in received.values() if count > 1)
    unexpected = [sid for sid in received if sid not in result.expected]
    state, counts = result.send or ("not found", {})
    # The send's own end: its last email at the sink (the run only looks at it afterwards).
    last = max((m.at for m in result.mail if m.message_id.startswith(prefix)), default=None)
    took = f"{last - result.published_at:.0f} s" if last and state == "done" else "—"
    lines += [
        f"| publish with email (Admin API) | {result.publish_status} in "
        f"{result.publish_seconds:.2f} s | 200 | {_met(result.publish_status == 200)} |",
        f"| the send: state, delivery rows | {state}; "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items()))
        + f"; publish to its last email {took} | done, {len(result.expected):,} sent | "
        f"{_met(state == 'done' and counts.get('sent') == len(result.expected))} |",
        f"| newsletter emails missing (of {len(result.expected):,}) | {len(missing)} | 0 "
        f"| {_met(not missing)} |",
        f"| newsletter emails duplicated | {duplicates} | ≤ {result.killed} (one per worker "
        f"process that died mid-task: {result.killed}) | {_met(duplicates <= result.killed)} |",
        f"| newsletter emails to someone not on the list, or to the wrong address "
        f"| {len(unexpected)}, {wrong_address} | 0, 0 | {_met(not unexpected and not wrong_address)} |",  # noqa: E501
    ]  # fmt: skip
    confirmations = {m.recipient for m in result.mail if "soak-reader-" in m.recipient}
    lost = sorted(a for a in result.subscribed if a not in confirmations)
    start = hits[0].at if hits else 0.0
    lines += [
        "",
        f"Subscribes answered 200/202: {len(result.subscribed)}; confirmation emails received "
        f"for {len(result.subscribed) - len(lost)}; none for {len(lost)}"
        + (
            " (answered at +"
            + ", +".join(f"{result.subscribed[a] - start:.0f}" for a in lost)
            + " s)"
            if lost
            else ""
        )
        + f". The web logged {result.unqueued} task(s) it could not enqueue (broker away; "
        "a confirmation's outbox row stays pending and the outbox sweeper sends it), the "
        f"worker {result.confirm_failures} confirmation task(s) that failed for good.",
        "Memory per process, PSS MB, root first, at the fifth → at the end: "
        + "; ".join(
            f"{name} {', '.join(f'{v:.0f}' for v in first.each_pss_mb)} → "
            f"{', '.join(f'{v:.0f}' for v in last.each_pss_mb)}"
            for name, (first, last) in result.memory.items()
        ),
        f"Requests with no answer outside the outage windows: {len(unanswered_outside)}.",
        "",
        "Outage windows run from the stop being asked for to the start returning (the service "
        "accepting connections again). Memory: each whole process tree (gunicorn master and "
        "workers; celery main process and pool children) from /proc/<pid>/smaps_rollup; PSS "
        "counts pages shared after the fork once. Missing and duplicated emails are counted at "
        "the SMTP sink by Message-ID against the subscribers the send was for.",
    ]
    for hit in outside[:20]:
        lines.append(f"- 5xx outside a window: {hit.status} {hit.kind} {hit.path} at "
                     f"+{hit.at - hits[0].at:.1f} s")  # fmt: skip
    if missing:
        lines.append(f"- missing subscriber ids (first 20): {missing[:20]}")
    for note in result.notes:
        lines.append(f"- {note}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the traffic")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="copy the logs and the raw figures (result.pickle) to DIR",
    )
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="PICKLE",
        help="print the report of a kept result.pickle, running nothing",
    )
    args = parser.parse_args()
    if args.report_from:
        print("\n".join(report(pickle.loads(args.report_from.read_bytes()))))  # noqa: S301
        return
    if not 1 <= args.minutes <= 120:
        parser.error("--minutes: from 1 to 120")
    if os.geteuid() != 0:
        raise SystemExit(
            "run as root: the private servers start as the postgres and rabbitmq users"
        )
    # Ctrl-C and SIGTERM unwind through the ExitStack, which stops everything started.
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with it ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = soak(args.minutes, args.keep)
    if args.keep:
        (args.keep / "result.pickle").write_bytes(pickle.dumps(result))
    lines = report(result)
    text = "\n".join(lines)
    print("\n" + text)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"soak-{datetime.now(UTC):%Y-%m-%d-%H%M}.md"
    path.write_text(text + "\n")
    print(f"Written to {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
