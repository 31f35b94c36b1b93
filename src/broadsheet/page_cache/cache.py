"""The page cache itself: pages by address, each valid in the content generation it was built in.

Every stored page carries the generation it was built in, a random token
replaced after each commit that changed what readers can see; a page of
another generation is stale, and the next miss overwrites it.  Each process
also keeps its own copies of the pages it served last, used under the very
same check, so a hit reads the token and nothing else.

Why a random token rather than a counter: two processes replacing it at the
same moment cannot lose an update that matters, since whichever lands last
is still a token no reader has seen before it was written, and a page is
stored under the token read *before* its queries ran.  For the same reason a
store that drops the token (eviction, a restart) only costs a fresh one.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
import redis
from flask import Flask, current_app, has_request_context, request

from broadsheet.page_cache.entries import Entry, Sealer
from broadsheet.page_cache.keys import store_key
from broadsheet.page_cache.stores import ENTRY_SECONDS, GenerationStore, PageStore, Recent

log = logging.getLogger("broadsheet.page_cache")

EXTENSION = "broadsheet.page_cache"
BLUEPRINTS = "broadsheet.page_cache.blueprints"  # the names of those that opted in
STATE = "broadsheet.page_cache.lookup"  # in the WSGI environ, from the middleware to Flask
# In the WSGI environ of an anonymous read (no staff session, no token): its endpoint, for the
# layers outside the cache (the stats count these, hits and misses alike).
READ_ENDPOINT = "broadsheet.page_cache.read_endpoint"
MEMORY_BYTES = 32 * 1024 * 1024  # each process's copies of the pages it served last
MEMORY_VALUES = 10_000  # and of the listing totals it used last
# What a failing store raises: the page is then served uncached, never an error.
STORE_ERRORS = (redis.RedisError, OSError, psycopg.Error)
T = TypeVar("T")


def new_token() -> str:
    return secrets.token_hex(8)


class PageCache:
    """Pages by address, each valid in the content generation it was built in.

    Without a store (``PAGE_CACHE_URL=off`` on PostgreSQL) it keeps no page,
    but still follows the generation, so that values derived from content
    (``remember``) are computed once per generation in each process.
    """

    def __init__(
        self,
        store: PageStore | None,
        generation: GenerationStore,
        sealer: Sealer,
        memory: int = MEMORY_BYTES,
    ) -> None:
        self.store = store
        self.generation = generation
        self.sealer = sealer
        self.recent: Recent[Entry] = Recent(memory, lambda entry: len(entry.body))
        self.values: Recent[tuple[str, Any]] = Recent(MEMORY_VALUES, lambda _value: 1)
        self._failing = False
        self._owed = False

    def start(self) -> None:
        """A new app: begin a generation of its own (a deploy with new templates)."""
        worked, _ = self._call(self.generation.start, new_token())
        self._owed = not worked

    def invalidate(self) -> str | None:
        """Make every stored page stale at once; returns the new token (None if it failed)."""
        token = new_token()
        worked, _ = self._call(self.generation.write, token)
        # Owed until it works: this process replaces the token before it serves anything.
        self._owed = not worked
        return None if self._owed else token

    def adopt(self, token: str) -> None:
        """A commit that announced ``token`` (``GenerationStore.announce``) has landed."""
        worked, _ = self._call(self.generation.adopt, token)
        if not worked:
            self._owed = True

    def current(self) -> str | None:
        """The current token (None when the store fails)."""
        if self._owed and self.invalidate() is None:
            return None
        worked, token = self._call(self.generation.read)
        if not worked:
            return None
        return token or self.invalidate()

    def lookup(self, address: str) -> tuple[str | None, Entry | None]:
        """The current token and the page kept for ``address`` in it.

        The token is None when the store fails; the page is None when there is none of
        this generation (one of an older generation is stale, and is overwritten).
        """
        token = self.current()
        if token is None or self.store is None:
            return token, None
        entry = self.recent.get(address)
        if entry is not None and entry.generation == token:
            return token, entry
        key = store_key(address)
        worked, stored = self._call(self.store.get, key)
        entry = self.sealer.open_entry(key, stored) if worked else None
        if entry is not None and entry.generation == token:
            self.recent.put(address, entry)
            return token, entry
        return token, None

    def put(self, address: str, entry: Entry) -> None:
        if self.store is None:
            return
        self.recent.put(address, entry)
        key = store_key(address)
        self._call(self.store.set, key, self.sealer.seal_entry(key, entry), ENTRY_SECONDS)

    def remember(self, generation: str, name: str, compute: Callable[[], T]) -> T:
        """The value called ``name`` in ``generation``: computed once, then shared."""
        key = store_key(f"value:{name}")
        held = self.values.get(key)
        if held is not None and held[0] == generation:
            return cast(T, held[1])
        worked, stored = self._call(self.store.get, key) if self.store else (False, None)
        sound, kept = self.sealer.open(key, stored) if worked else (False, None)
        if sound and isinstance(kept, list) and len(kept) == 2 and kept[0] == generation:
            value = cast(T, kept[1])
        else:
            value = compute()
            if self.store is not None:
                sealed = self.sealer.seal(key, [generation, value])
                self._call(self.store.set, key, sealed, ENTRY_SECONDS)
        self.values.put(key, (generation, value))
        return value

    def _call(self, method: Any, *args: Any) -> tuple[bool, Any]:
        """Whether the store answered, and its answer; a failure is logged once until it works."""
        try:
            answer = method(*args)
        except STORE_ERRORS:
            if not self._failing:
                log.warning("the page cache's store failed; serving pages uncached", exc_info=True)
            self._failing = True
            return False, None
        if self._failing:
            log.info("the page cache's store works again")
        self._failing = False
        return True, answer


@dataclass
class Lookup:
    """What the middleware tells the app about a request it looked up."""

    generation: str
    address: str
    cacheable: bool  # the endpoint's blueprint opted in
    shareable: bool = False


def page_cache(app: Flask) -> PageCache | None:
    cache: PageCache | None = app.extensions.get(EXTENSION)
    return cache


def remember(name: str, compute: Callable[[], T]) -> T:
    """A value derived from content (a listing's total, the most used tags), computed once per
    content generation; plain data only (numbers, strings, lists: it is stored as msgpack,
    and a tuple comes back as a list).

    Pass it where a query takes a ``Remember``.  Within an anonymous request
    that the page cache looked up, the value is kept under that request's
    generation, in this process and in the store, so the second page of the
    home page or another process's miss reuses the first one's count; it is
    stored under the token read before any query ran, so, like a page, it can
    never outlive a change.  Anywhere else (staff, the cache off, the store
    down) it is simply computed.
    """
    lookup: Lookup | None = request.environ.get(STATE) if has_request_context() else None
    cache = page_cache(current_app) if lookup is not None else None
    if lookup is None or cache is None:
        return compute()
    return cache.remember(lookup.generation, name, compute)
