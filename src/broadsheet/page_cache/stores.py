"""Where the page cache keeps things: the pages, the content generation, and each process's copies.

Redis when the site has one (every machine shares it), or by default a
folder under the instance folder (the processes of one machine share it).
The stores hold bytes only (``entries`` seals them); nothing read back from
a store is ever unpickled.  Every method may raise ``OSError`` or
``RedisError``; the page cache turns a failing store into uncached pages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import struct
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import redis
from cachelib import FileSystemCache, RedisCache
from cachelib.serializers import FileSystemSerializer, RedisSerializer

from broadsheet.extensions import DbSession

GENERATION_KEY = "generation"
ENTRY_SECONDS = 3600  # only frees space: a change makes an entry unreachable at once
EMBEDDED_MAX_ENTRIES = 20_000
REDIS_TIMEOUT_SECONDS = 0.25  # a stalled Redis must not stall the page
LISTEN_POLL_SECONDS = 1.0  # the Redis listener looks up this often to see whether to stop
LISTEN_RETRY_SECONDS = 1.0
V = TypeVar("V")
log = logging.getLogger("broadsheet.page_cache")


class PageStore(Protocol):
    """What the page cache needs of a store for pages: the get/set of cachelib's ``BaseCache``."""

    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...


class GenerationStore(Protocol):
    """Where the current content generation lives; read on every cached request, so cheap.

    ``write`` makes a token current for every process that shares the store;
    ``announce`` is called inside the transaction of a change (a store that
    can, delivers the token with its commit) and ``adopt`` after that commit;
    ``start`` when the app starts.  They raise ``OSError``, ``RedisError`` or
    ``psycopg.Error`` when the store fails.
    """

    def read(self) -> str | None: ...

    def write(self, token: str) -> None: ...

    def announce(self, session: DbSession, token: str) -> None: ...

    def adopt(self, token: str) -> None: ...

    def start(self, token: str) -> None: ...


class WrittenAfterCommit:
    """For a store that nothing delivers: the token is written once the change is committed."""

    def write(self, token: str) -> None:
        raise NotImplementedError

    def announce(self, session: DbSession, token: str) -> None:
        pass

    def adopt(self, token: str) -> None:
        self.write(token)

    def start(self, token: str) -> None:
        self.write(token)  # a deploy with new templates begins afresh


class RedisGeneration(WrittenAfterCommit):
    """The token in a Redis key, and held in memory from the key's channel.

    ``write`` sets the key and publishes the token on a channel of the same
    name in one transaction; a listener thread in each process subscribes to
    it, reads the key once it is subscribed (so nothing written meanwhile is
    missed), and keeps the latest token in memory: a page served from this
    process's own copies then needs no round trip to Redis at all.  While the
    listener is not subscribed (starting, or after a lost connection), ``read``
    asks Redis, as a process without a listener would.
    """

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client, self.key = client, key
        self.token: str | None = None
        self.listening = False
        self.closed = False
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()  # the process whose listener ``listening`` speaks of

    def read(self) -> str | None:
        if self.listening and self.pid == os.getpid():
            return self.token
        self._listen()
        token = self.client.get(self.key)
        return token.decode() if isinstance(token, bytes) else None

    def write(self, token: str) -> None:
        with self.client.pipeline(transaction=True) as both:
            both.set(self.key, token)
            both.publish(self.key, token)
            both.execute()
        with self.lock:
            if self.listening:
                self.token = token  # this process's next request sees its own change

    def close(self) -> None:
        self.closed = True
        if self.thread is not None:
            self.thread.join(timeout=LISTEN_POLL_SECONDS * 3)

    def _listen(self) -> None:
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's listener did not come along
                self.pid, self.listening, self.thread = os.getpid(), False, None
            if self.closed or (self.thread is not None and self.thread.is_alive()):
                return
            self.thread = threading.Thread(
                target=_listen_redis, args=(weakref.ref(self),), daemon=True,
                name="page-cache-redis-listener",
            )  # fmt: skip
            self.thread.start()

    def _received(self, token: str | None, *, subscribed: bool) -> None:
        with self.lock:
            self.token = token
            self.listening = subscribed

    def _subscribed(self) -> None:
        """Now subscribed: what the key holds is current, and later changes will arrive."""
        token = self.client.get(self.key)
        self._received(token.decode() if isinstance(token, bytes) else None, subscribed=True)


def _listen_redis(ref: weakref.ref[RedisGeneration]) -> None:
    """The listener thread: holds only a weak reference, so it ends with its app."""
    while (generation := ref()) is not None and not generation.closed:
        channel = generation.client.pubsub(ignore_subscribe_messages=False)
        key = generation.key
        del generation
        try:
            channel.subscribe(key)
            while (generation := ref()) is not None and not generation.closed:
                message = channel.get_message(timeout=LISTEN_POLL_SECONDS)
                if message is None:
                    pass
                elif message["type"] == "subscribe":
                    generation._subscribed()
                elif message["type"] == "message":
                    data = message["data"]
                    generation._received(
                        data.decode() if isinstance(data, bytes) else None, subscribed=True
                    )
                del generation
        except (redis.RedisError, OSError):
            log.debug("the page cache's Redis listener failed", exc_info=True)
        finally:
            channel.close()
        if (generation := ref()) is None:
            return
        generation._received(None, subscribed=False)  # read from Redis until back
        del generation
        time.sleep(LISTEN_RETRY_SECONDS)


class FileGeneration(WrittenAfterCommit):
    """The token in a small file, replaced whole (a reader never sees half of one).

    Shared by the processes of one machine only: the default with SQLite, whose
    database is one machine's too (the file lives beside the database's).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            with open(self.path, "rb") as file:
                return file.read(64).decode("ascii") or None
        except FileNotFoundError:
            return None

    def write(self, token: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        spare = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        try:
            spare.write_text(token, encoding="ascii")
            spare.replace(self.path)
        finally:
            spare.unlink(missing_ok=True)  # only left behind when writing failed


class BytesOnly(RedisSerializer, FileSystemSerializer):
    """cachelib's serializer interface over bytes, in place of its default pickle.

    Values are the sealed bytes of ``entries``, plus the count of files that
    ``FileSystemCache`` keeps for itself; anything else read back (a pickle
    put there by someone else) is None, a miss.
    """

    def dumps(self, value: Any, protocol: int = 0) -> bytes:
        if isinstance(value, bytes):
            return b"b" + value
        if type(value) is int:
            return b"i" + str(value).encode("ascii")
        raise TypeError(f"the page cache stores bytes, not {type(value).__name__}")

    def loads(self, bvalue: bytes | None) -> Any:
        if not bvalue:
            return None
        kind, data = bvalue[:1], bvalue[1:]
        if kind == b"b":
            return data
        if kind == b"i" and data.isdigit():
            return int(data)
        log.warning("a page cache entry not in the page cache's format was ignored")
        return None

    def dump(self, value: Any, f: Any, protocol: int = 0) -> None:
        f.write(self.dumps(value))

    def load(self, f: Any) -> Any:
        return self.loads(f.read())


def redis_stores(url: str, prefix: str) -> tuple[PageStore, GenerationStore]:
    client = redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
    )
    pages = RedisCache(host=client, key_prefix=prefix, default_timeout=ENTRY_SECONDS)
    pages.serializer = BytesOnly()
    return pages, RedisGeneration(client, f"{prefix}{GENERATION_KEY}")


def embedded_pages(folder: Path, max_entries: int = EMBEDDED_MAX_ENTRIES) -> PageStore:
    """Pages in cachelib's folder of files, at most about ``max_entries`` of them."""
    pages = PageFolder(str(folder / "pages"), max_entries)
    pages.serializer = BytesOnly()
    return pages


class PageFolder(FileSystemCache):
    """cachelib's folder of files, counted now and then rather than on every page kept.

    cachelib's own threshold keeps a count in a file of its own, read twice and
    rewritten on every ``set``: three more file operations than the page itself
    on every miss, and a count that processes sharing the folder overwrite.
    Here each process lists the folder once every ``PRUNE_EVERY`` pages it
    keeps and prunes it when it has grown past ``max_entries``.
    """

    PRUNE_EVERY = 200

    def __init__(self, path: str, max_entries: int) -> None:
        super().__init__(path, threshold=0, default_timeout=ENTRY_SECONDS)  # 0: no count file
        self.max_entries = max_entries
        self._kept = 0
        self._counting = threading.Lock()

    def set(self, key: str, value: Any, timeout: Any = None, mgmt_element: bool = False) -> bool:
        with self._counting:
            self._kept += 1
            due = self._kept % self.PRUNE_EVERY == 0
        if due:
            self.prune()
        return bool(super().set(key, value, timeout, mgmt_element))

    def prune(self) -> None:
        """Bring the folder back under ``max_entries`` if it has grown past it: the expired
        entries go, then the least recently written, down to two thirds of it."""
        names = list(self._list_dir())
        if len(names) <= self.max_entries:
            return
        now, kept = time.time(), []
        for name in names:
            try:
                with open(name, "rb") as entry:
                    expires = struct.unpack("I", entry.read(4))[0]
                if expires != 0 and expires < now:
                    os.remove(name)
                else:
                    kept.append((os.stat(name).st_mtime, name))
            except (OSError, struct.error):
                continue  # removed meanwhile by another process, or being written
        kept.sort()
        for _written, name in kept[: max(0, len(kept) - self.max_entries * 2 // 3)]:
            with contextlib.suppress(OSError):
                os.remove(name)


def file_generation(folder: Path) -> GenerationStore:
    """The token in ``folder``, where the pages' pruning never looks."""
    return FileGeneration(folder / GENERATION_KEY)


class Recent(Generic[V]):
    """This process's copies of what it used last, up to a weight (bytes, or a count).

    A copy is used only while its generation is the current one, exactly like
    a page in the shared store: it saves reading and unpickling the page, not
    the check that it is still good.
    """

    def __init__(self, budget: int, weigh: Callable[[V], int]) -> None:
        self.budget, self.used, self.weigh = budget, 0, weigh
        self.entries: OrderedDict[str, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> V | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: str, value: V) -> None:
        weight = self.weigh(value)
        if weight > self.budget // 4:
            return
        with self.lock:
            old = self.entries.pop(key, None)
            self.used += weight - (self.weigh(old) if old is not None else 0)
            self.entries[key] = value
            while self.used > self.budget:
                _, dropped = self.entries.popitem(last=False)
                self.used -= self.weigh(dropped)
