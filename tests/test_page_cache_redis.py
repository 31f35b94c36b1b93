"""The Redis page store answers a page this process holds without asking Redis anything.

The content generation reaches every process over Redis pub/sub and is held
in memory, so a hit is served from memory alone; a change made anywhere still
reaches the page on the next request (another app on the same prefix here,
as another web process would be).  Real Redis at 127.0.0.1:6379, reached
through a TCP forwarder that counts what the app sends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask

from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content import services as content
from broadsheet.content.models import PostStatus
from broadsheet.extensions import db, utcnow
from broadsheet.page_cache import EXTENSION
from broadsheet.page_cache.stores import RedisGeneration
from tests import services
from tests.conftest import NOW, base_config
from tests.page_cache_support import another_app, eventually
from tests.tcp_proxy import TcpProxy


class CountingProxy(TcpProxy):
    """A forwarder that counts the bytes the app sends towards Redis."""

    def __init__(self, host: str, port: int) -> None:
        self.sent = 0
        self.counting = threading.Lock()
        super().__init__(host, port)

    def _pipe(self, source: Any, sink: Any) -> None:
        if source.getsockname()[1] == self.port:  # the app's end: what it sends
            original = source.recv

            def counted(size: int) -> bytes:
                chunk: bytes = original(size)
                with self.counting:
                    self.sent += len(chunk)
                return chunk

            source = _Counted(source, counted)
        super()._pipe(source, sink)


class _Counted:
    """A socket whose ``recv`` is counted; everything else is the socket's own."""

    def __init__(self, sock: Any, recv: Any) -> None:
        self._sock, self.recv = sock, recv

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __hash__(self) -> int:
        return hash(self._sock)

    def __eq__(self, other: object) -> bool:
        return self._sock == (other._sock if isinstance(other, _Counted) else other)


@pytest.fixture
def road() -> Iterator[CountingProxy]:
    services.require_redis()
    target = urlsplit(services.REDIS_URL)
    proxy = CountingProxy(target.hostname or "127.0.0.1", target.port or 6379)
    yield proxy
    proxy.cut()


@pytest.fixture
def prefix() -> Iterator[str]:
    name = services.unique_name("broadsheet_test_speed") + ":"
    yield name
    client = redis.Redis.from_url(services.REDIS_URL)
    for key in client.scan_iter(match=f"{name}*", count=1000):
        client.delete(key)
    client.close()


def test_a_page_this_process_holds_is_served_with_no_round_trip_to_redis(
    app: Flask, database_url: str, tmp_path: Path, make_post: Any, road: CountingProxy, prefix: str
) -> None:
    make_post("Earlier", published_at=NOW - timedelta(days=1))
    url = f"redis://127.0.0.1:{road.port}/0"
    config = base_config(tmp_path, database_url, PAGE_CACHE_URL=url, PAGE_CACHE_PREFIX=prefix)
    with another_app(app, config) as site:
        reader = site.test_client()
        assert reader.get("/earlier/").headers["X-Cache"] == "MISS"
        assert eventually(lambda: reader.get("/earlier/").headers.get("X-Cache") == "HIT")
        # Until its listener has subscribed (a thread, slower on a busy machine), a process
        # asks Redis for the generation on every read, as it must.
        generation = site.extensions[EXTENSION].generation
        assert eventually(lambda: generation.listening)
        before = road.sent
        for _ in range(20):
            response = reader.get("/earlier/")
            assert response.headers["X-Cache"] == "HIT"
            assert b"Earlier" in response.data
        assert road.sent == before  # not one command sent to Redis for twenty readers


def test_a_change_made_elsewhere_reaches_this_process_over_pub_sub(
    app: Flask,
    database_url: str,
    tmp_path: Path,
    make_post: Any,
    author: Any,
    road: CountingProxy,
    prefix: str,
) -> None:
    make_post("Earlier", published_at=NOW - timedelta(days=1))
    url = f"redis://127.0.0.1:{road.port}/0"
    config = base_config(tmp_path, database_url, PAGE_CACHE_URL=url, PAGE_CACHE_PREFIX=prefix)
    with another_app(app, config) as site:
        reader = site.test_client()
        reader.get("/")
        assert eventually(lambda: reader.get("/").headers.get("X-Cache") == "HIT")
        elsewhere = base_config(
            tmp_path / "elsewhere", database_url, PAGE_CACHE_URL=url, PAGE_CACHE_PREFIX=prefix
        )
        with another_app(site, elsewhere):  # another web process on the same Redis prefix
            writer = db.session.get(type(author), author.id)
            content.create_post(
                db.session, title="From elsewhere", markdown="Hi.", authors=[writer],
                tags=["Flask"], status=PostStatus.PUBLISHED, now=utcnow(), actor=OPERATOR,
            )  # fmt: skip
            db.session.commit()
        assert eventually(lambda: b"From elsewhere" in reader.get("/").data)
        assert eventually(lambda: reader.get("/").headers.get("X-Cache") == "HIT")


def test_a_forked_process_does_not_trust_the_generation_its_parent_held() -> None:
    """A process forked after its parent had subscribed (a prefork worker) has no listener:
    it must ask Redis, and start its own, rather than serve the parent's token for ever."""
    services.require_redis()
    client = redis.Redis.from_url(services.REDIS_URL)
    key = f"{services.unique_name('broadsheet_fork')}:generation"
    generation = RedisGeneration(client, key)
    try:
        generation.write("before")
        assert eventually(lambda: generation.read() == "before" and generation.listening)
        client.set(key, "after")  # changed with no message this process could hear
        generation.pid = -1  # as the child of a fork sees it: the listener was its parent's
        assert generation.read() == "after"
        assert eventually(lambda: generation.listening and generation.pid == os.getpid())
    finally:
        generation.close()
        client.delete(key)
        client.close()
