"""The content generation over PostgreSQL ``LISTEN``/``NOTIFY``: shared wherever the database is.

With the embedded store, pages live in a folder of each machine; on a
platform such as Heroku every dyno has its own disk, so a token file would
be one dyno's: the scheduler's publish on the worker dyno would never reach
the web dyno's pages.  The database is the one thing every process of a
deployment shares, so on PostgreSQL the token travels through it, with no
other service to run:

- a change announces its new token with ``pg_notify`` inside its own
  transaction, so it is delivered to every listener exactly when (and only
  if) the change commits;
- each process that serves pages keeps a listener thread on a connection of
  its own, which holds the latest token in memory: a hit still reads nothing
  but memory;
- a listener that connects (the first request of a process, or after a lost
  connection) announces a fresh token of its own once it listens, so every
  process then agrees on it and nothing announced while it was away can be
  missed; until it listens, pages are served uncached.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import weakref
from collections import deque

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from broadsheet.extensions import DbSession

log = logging.getLogger("broadsheet.page_cache")

CHANNEL = "broadsheet_page_cache"
APPLICATION_NAME = "broadsheet page cache listener"  # as pg_stat_activity shows it
CONNECT_SECONDS = 3.0  # how long the first request of a process waits for its listener
DELIVERY_SECONDS = 2.0  # how long a commit waits to see its own token come back
RETRY_SECONDS = 1.0
POLL_SECONDS = 1.0  # the listener looks up this often to see whether it should stop


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://…`` as psycopg itself takes it."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class NotifiedGeneration:
    """The current token, as last announced on the database's channel."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.token: str | None = None
        self.listening = False
        self.closed = False
        self.seen: deque[str] = deque(maxlen=256)
        self.changed = threading.Condition()
        self.thread: threading.Thread | None = None

    # GenerationStore ------------------------------------------------------------------------

    def read(self) -> str | None:
        if not self.listening:
            self._listen()
        with self.changed:
            if not self.listening:
                raise OSError("not listening for the page cache's generation yet")
            return self.token

    def write(self, token: str) -> None:
        """Announce ``token`` on a connection of its own (a change made outside a session)."""
        self._notify(token)
        self._delivered(token)

    def announce(self, session: DbSession, token: str) -> None:
        session.connection().execute(
            text("SELECT pg_notify(:channel, :token)"), {"channel": CHANNEL, "token": token}
        )

    def adopt(self, token: str) -> None:
        """Wait until the listener has the token this process's commit announced, so that its
        next request sees its own change."""
        if not self._delivered(token):
            log.warning("the page cache's notification did not come back; announcing it again")
            self._notify(token)

    def _notify(self, token: str) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as connection:
            connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, token))

    def _delivered(self, token: str) -> bool:
        """Wait for the listener to receive ``token``; True at once when it does not listen
        (a process that serves no pages, or not yet: it starts afresh anyway)."""
        with self.changed:
            return not self.listening or self.changed.wait_for(
                lambda: token in self.seen or not self.listening, timeout=DELIVERY_SECONDS
            )

    def start(self, token: str) -> None:
        """Nothing to do: a process's listener announces a fresh token when it starts."""

    # The listener ---------------------------------------------------------------------------

    def close(self) -> None:
        self.closed = True
        if self.thread is not None:
            self.thread.join(timeout=POLL_SECONDS * 3)

    def _listen(self) -> None:
        """Start the listener if it is not running; the first time, wait until it listens."""
        with self.changed:
            if self.thread is not None and self.thread.is_alive():
                return
            first = self.thread is None
            self.thread = threading.Thread(
                target=_listen, args=(weakref.ref(self), self.url), daemon=True,
                name="page-cache-listener",
            )  # fmt: skip
            self.thread.start()
            if first:
                self.changed.wait_for(lambda: self.listening, timeout=CONNECT_SECONDS)

    def _received(self, token: str, fresh: str) -> None:
        with self.changed:
            self.token = token
            self.seen.append(token)
            if token == fresh and not self.listening:
                self.listening = True
                log.info("the page cache listens for changes on PostgreSQL")
            self.changed.notify_all()

    def _lost(self) -> None:
        with self.changed:
            if self.listening:
                log.warning("the page cache lost its PostgreSQL listener; serving pages uncached")
            self.listening = False
            self.changed.notify_all()


def _listen(ref: weakref.ref[NotifiedGeneration], url: str) -> None:
    """The listener thread: holds only a weak reference, so it ends with its app."""
    while _wanted(ref):
        try:
            with psycopg.connect(
                url, autocommit=True, connect_timeout=5, application_name=APPLICATION_NAME
            ) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                fresh = secrets.token_hex(8)
                connection.execute("SELECT pg_notify(%s, %s)", (CHANNEL, fresh))
                while (generation := ref()) is not None and not generation.closed:
                    for notice in connection.notifies(timeout=POLL_SECONDS):
                        generation._received(notice.payload, fresh)
                    del generation
        except psycopg.Error:
            log.debug("the page cache's listener failed", exc_info=True)
        if not _wanted(ref):
            return
        if (generation := ref()) is not None:
            generation._lost()
            del generation
        time.sleep(RETRY_SECONDS)


def _wanted(ref: weakref.ref[NotifiedGeneration]) -> bool:
    generation = ref()
    return generation is not None and not generation.closed
