"""Counting page views where every public page passes: a WSGI layer around the page cache.

``CountViews`` wraps the page cache's middleware, so a page answered from
the cache counts like one Flask built.  It counts a reader's ``GET`` that
got a 200 HTML page of the reader site (the page cache tells it the
endpoint of anonymous reads: staff and token-holders never count), unless
the user agent is a bot's, or the reader asked not to be tracked
(``DNT: 1`` or ``Sec-GPC: 1``) and ``STATS_HONOUR_DNT`` is on.

What a request leaves behind is a count under (minute, path, referring
domain, ``utm_source``) and an unsalted digest of address and user agent,
in this process's memory; ``ViewCounter`` writes that batch about once a
second (``recording``), where the digest becomes the day's salted mark, and
drops it.  A process killed loses at most the batch it held.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from crawlerdetect import CrawlerDetect
from flask import Flask

from broadsheet.extensions import db
from broadsheet.page_cache import READ_ENDPOINT, page_cache
from broadsheet.page_cache.keys import Keys
from broadsheet.stats.models import PATH_LENGTH, REFERRER_LENGTH, SOURCE_LENGTH
from broadsheet.stats.recording import Tally, ViewKey, record_views

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger("broadsheet.stats")
# What a request leaves in memory: (minute number, WSGI path, referring domain, source, post?).
RawKey = tuple[int, str, str, str, bool]

EXTENSION = "broadsheet.stats"
COUNTED_BLUEPRINTS = frozenset({"site"})  # the reader's pages; not feeds, files or the API
POST_ENDPOINT = "site.post"
FLUSH_SECONDS = 1.0
_crawlers = CrawlerDetect()


@lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """Whether a user agent is a crawler's, a bot's or a script's (no user agent at all is)."""
    return not user_agent.strip() or bool(_crawlers.isCrawler(user_agent))


@lru_cache(maxsize=1024)
def referring_domain(referrer: str, own_host: str) -> str:
    """The referrer's host name only ('' for none, this site, or something unreadable)."""
    if not referrer:
        return ""
    try:
        host = urlsplit(referrer).hostname or ""
    except ValueError:
        return ""
    host = host.removeprefix("www.")
    if host == own_host or not host.isascii():
        return ""
    return host[:REFERRER_LENGTH]


def utm_source(query: str) -> str:
    values = parse_qs(query, max_num_fields=50).get("utm_source") or [""]
    return values[0].strip().lower()[:SOURCE_LENGTH]


class ViewCounter:
    """This process's views not yet written, and the thread that writes them once a second."""

    def __init__(self, flask_app: Flask, seconds: float = FLUSH_SECONDS) -> None:
        self.flask_app = flask_app
        self.seconds = seconds
        # Tests write the batch themselves (``flush``), at the moment they choose.
        self.background = not flask_app.testing
        self._lock = threading.Lock()
        self._batch: dict[RawKey, Tally] = {}
        self._pid = 0

    def add(self, key: RawKey, digest: bytes) -> None:
        """One view, under (minute number, raw WSGI path, referring domain, source, is a post)."""
        with self._lock:
            tally = self._batch.get(key)
            if tally is None:
                tally = self._batch[key] = Tally()
            tally.views += 1
            tally.visitors.add(digest)
        if self.background and self._pid != os.getpid():
            self._start()

    @staticmethod
    def _keys(batch: dict[RawKey, Tally]) -> dict[ViewKey, Tally]:
        """The batch under the keys the database keeps (work kept out of the request)."""
        keys: dict[ViewKey, Tally] = {}
        for (minute, raw, referrer, source, is_post), tally in batch.items():
            path = raw.encode("latin-1", "replace").decode("utf-8", "replace")[:PATH_LENGTH]
            key = ViewKey(
                minute=datetime.fromtimestamp(minute * 60, UTC),
                path=path,
                referrer=referrer,
                source=source,
                slug=path.strip("/") if is_post else None,
            )
            held = keys.setdefault(key, Tally())
            held.views += tally.views
            held.visitors |= tally.visitors
        return keys

    def flush(self) -> int:
        """Write the batch held now; returns the views written.

        A batch the database refuses is logged and dropped: counting must never
        hold memory without bound, nor fail a reader's request.
        """
        with self._lock:
            batch, self._batch = self._batch, {}
        if not batch:
            return 0
        with self.flask_app.app_context():
            try:
                written = record_views(db.session, self._keys(batch))
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.warning("could not write %d view(s); dropped", len(batch), exc_info=True)
                return 0
            finally:
                db.session.remove()
        return written

    def _start(self) -> None:
        """Start the writer in this process (after a fork, the parent's thread is not here)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
        threading.Thread(target=self._run, name="stats-writer", daemon=True).start()
        atexit.register(self.flush)  # a process that ends cleanly loses nothing

    def _run(self) -> None:
        while True:
            time.sleep(self.seconds)
            self.flush()


class CountViews:
    """Counts the reader's page views on their way out, whoever answered them."""

    def __init__(self, app: WSGIApplication, counter: ViewCounter, flask_app: Flask) -> None:
        self.app = app
        self.counter = counter
        config = flask_app.config
        self.honour_dnt = bool(config["STATS_HONOUR_DNT"])
        self.own_host = (urlsplit(config["SITE_URL"]).hostname or "").removeprefix("www.")
        # Without a page cache nothing says which reads are anonymous: match the path here,
        # and leave out requests carrying a token or a cookie.
        self.keys = (
            None
            if page_cache(flask_app) is not None
            else Keys(flask_app.url_map, config.get("TRUSTED_HOSTS"), config["SITE_URL"])
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or not self._may_count(environ):
            return self.app(environ, start_response)

        query = environ.get("QUERY_STRING", "")  # the page cache trims it to what views read

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200 ") and _is_html(headers):
                self._count(environ, query)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def _may_count(self, environ: WSGIEnvironment) -> bool:
        if self.honour_dnt and (
            environ.get("HTTP_DNT") == "1" or environ.get("HTTP_SEC_GPC") == "1"
        ):
            return False
        return not is_bot(environ.get("HTTP_USER_AGENT", ""))

    def _endpoint(self, environ: WSGIEnvironment) -> str | None:
        if self.keys is None:
            return environ.get(READ_ENDPOINT)
        if "HTTP_AUTHORIZATION" in environ or "HTTP_COOKIE" in environ:
            return None
        return self.keys.endpoint(environ)

    def _count(self, environ: WSGIEnvironment, query: str) -> None:
        endpoint = self._endpoint(environ)
        if endpoint is None or endpoint.rpartition(".")[0] not in COUNTED_BLUEPRINTS:
            return
        referrer = environ.get("HTTP_REFERER")
        key = (
            int(time.time()) // 60,
            environ.get("PATH_INFO", "")[: PATH_LENGTH * 4],  # decoded when written
            referring_domain(referrer, self.own_host) if referrer else "",
            utm_source(query) if "utm_source" in query else "",
            endpoint == POST_ENDPOINT,
        )
        visitor = f"{environ.get('REMOTE_ADDR', '')}\n{environ.get('HTTP_USER_AGENT', '')}"
        self.counter.add(
            key, hashlib.blake2b(visitor.encode("utf-8", "replace"), digest_size=16).digest()
        )


def _is_html(headers: list[tuple[str, str]]) -> bool:
    return any(
        name.lower() == "content-type" and value.startswith("text/html") for name, value in headers
    )


def init_app(app: Flask) -> None:
    """Count views around whatever serves pages now (call it after ``page_cache.init_app``)."""
    counter = ViewCounter(app)
    app.extensions[EXTENSION] = counter
    if not app.config["STATS_ENABLED"]:
        return
    app.wsgi_app = CountViews(app.wsgi_app, counter, app)  # type: ignore[method-assign]


def view_counter(app: Flask) -> ViewCounter:
    counter: ViewCounter = app.extensions[EXTENSION]
    return counter
