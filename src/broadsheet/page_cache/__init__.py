"""The page cache: whole public responses, kept in a store every web process shares.

A blueprint that opts in (``cache_pages(bp)``: the site, the feeds, the
Content API) has each anonymous GET answered from the store when the page
is there, with no database query at all; otherwise the view runs and a
public 200 it returns is stored for the next reader.  Logged-in staff (a
live session or remember-me cookie this site signed), token-holders (an
Authorization header), the admin and the Admin API never touch it.

Invalidation is exact, not a guess with timers: every stored page carries
the site's *content generation* it was built in, a random token replaced
after each commit that changed what readers can see (``changes``), and
when the app starts.  Where the token lives decides who shares it:

- PostgreSQL (a deployment of several machines): announced with
  ``NOTIFY`` and held in memory by a listener in each web process
  (``notify``);
- SQLite (one machine): a small file beside the database file;
- Redis (``PAGE_CACHE_URL``): a key beside the pages, published on a
  channel and held in memory by a listener in each web process, so that a
  hit on a page this process holds needs no round trip.

The pages themselves live in a folder under the instance folder (cachelib's
``FileSystemCache``), or in Redis; each process also keeps its own copies
of the pages it served last.  Entries are data sealed with an HMAC
(``entries``), kept under the path and the parameters the endpoint reads
(``keys``).  A store that fails (Redis down) makes pages uncached, never
an error.

The modules: ``cache`` (the cache and ``remember``), ``keys``,
``entries`` (serialisation), ``stores``, ``notify``, ``changes``
(invalidation) and ``middleware`` (serving).
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, current_app, request
from flask.blueprints import BlueprintSetupState
from sqlalchemy.engine import make_url

from broadsheet.config import is_postgresql
from broadsheet.extensions import db
from broadsheet.page_cache.cache import (
    BLUEPRINTS,
    EXTENSION,
    READ_ENDPOINT,
    PageCache,
    page_cache,
    remember,
)
from broadsheet.page_cache.changes import WATCHED_TABLES, mark_changed, watch
from broadsheet.page_cache.entries import Entry, Sealer
from broadsheet.page_cache.keys import QUERY_PARAMETERS, store_key
from broadsheet.page_cache.middleware import PageCacheMiddleware, mark_shareable
from broadsheet.page_cache.notify import NotifiedGeneration, libpq_url
from broadsheet.page_cache.stores import (
    GenerationStore,
    PageStore,
    RedisGeneration,
    embedded_pages,
    file_generation,
    redis_stores,
)

__all__ = [
    "QUERY_PARAMETERS",
    "READ_ENDPOINT",
    "WATCHED_TABLES",
    "Entry",
    "PageCache",
    "PageCacheMiddleware",
    "cache_pages",
    "close",
    "init_app",
    "invalidate",
    "mark_changed",
    "page_cache",
    "remember",
    "store_key",
]


def init_app(app: Flask) -> None:
    """Choose the stores, start a fresh generation, watch the app's session, and wrap the app.

    Call it before wrapping ``app.wsgi_app`` in anything that rewrites the
    request (ProxyFix), so that the cache sees the request the app sees.
    """
    app.extensions[BLUEPRINTS] = set()
    app.extensions[PLAIN_READS] = set()
    app.after_request(mark_shareable)
    url = app.config.get("PAGE_CACHE_URL") or ""
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    if url == "off" and not is_postgresql(database):
        app.extensions[EXTENSION] = None
        return
    pages: PageStore | None
    generation: GenerationStore
    folder = Path(app.instance_path) / "page-cache"
    if url == "off":
        # No page is kept, but the generation is followed on the database, which needs no
        # folder or other service: listing totals and the site's settings are still read once
        # per generation.
        pages, generation = None, NotifiedGeneration(libpq_url(database))
    elif url:
        pages, generation = redis_stores(url, app.config.get("PAGE_CACHE_PREFIX") or "")
    elif is_postgresql(database):
        # Every process of the deployment shares the database, not the instance folder.
        pages, generation = embedded_pages(folder), NotifiedGeneration(libpq_url(database))
    else:
        pages, generation = embedded_pages(folder), file_generation(_token_folder(database, folder))
    cache = PageCache(pages, generation, Sealer(app.config["SECRET_KEY"]))
    app.extensions[EXTENSION] = cache
    if is_postgresql(database):
        app.before_request(read_outside_a_transaction)
        app.teardown_request(_end_read)
    cache.start()
    watch()
    app.wsgi_app = PageCacheMiddleware(app.wsgi_app, cache, app)  # type: ignore[method-assign]


READ_OUTSIDE = "broadsheet.page_cache.read_outside"  # in the environ of such a read
PLAIN_READS = "broadsheet.page_cache.plain_reads"  # the blueprints whose reads need no transaction


def read_outside_a_transaction() -> None:
    """An anonymous read of a page that may be kept runs its statements in autocommit.

    Such a view only reads (one statement, or a few), so it needs no
    transaction: no BEGIN and no ROLLBACK round trip, and psycopg keeps the
    statements it has prepared (a ROLLBACK drops them all), so a page's
    statement is planned once per connection rather than on every miss.
    """
    if (
        request.method in ("GET", "HEAD")
        and READ_ENDPOINT in request.environ  # anonymous: no staff session, no token
        and request.blueprint in current_app.extensions[PLAIN_READS]
        and not db.session().in_transaction()
    ):
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        request.environ[READ_OUTSIDE] = True


def _end_read(_error: BaseException | None) -> None:
    """Hand the connection back, reset for whatever comes next, even where the app context
    outlives the request (a rollback outside a transaction sends nothing)."""
    if request.environ.pop(READ_OUTSIDE, False):
        db.session.rollback()


def _token_folder(database: str, instance_folder: Path) -> Path:
    """Where the token file goes with SQLite: beside the database file, so that every process
    using that database shares it, whatever its instance folder."""
    path = make_url(database).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return instance_folder
    return Path(path).resolve().parent / f"{Path(path).name}-page-cache"


def invalidate(app: Flask) -> None:
    """Make every cached page stale, for changes made outside a session (raw SQL, a restore)."""
    cache = page_cache(app)
    if cache is not None:
        cache.invalidate()


def close(app: Flask) -> None:
    """Stop what the cache runs in the background (the PostgreSQL or Redis listener), for an
    app that is done with before its process ends (tests); the process's end stops it anyway."""
    cache = page_cache(app)
    if cache is not None and isinstance(cache.generation, NotifiedGeneration | RedisGeneration):
        cache.generation.close()


def cache_pages(bp: Blueprint, *, streams: bool = False) -> None:
    """Serve ``bp``'s anonymous GETs from the page cache, and keep its public 200s there.

    Their statements run outside a transaction (``read_outside_a_transaction``) unless
    ``streams``: a view that reads through a server-side cursor needs one.
    """

    def register(state: BlueprintSetupState) -> None:
        state.app.extensions[BLUEPRINTS].add(bp.name)
        if not streams:
            state.app.extensions[PLAIN_READS].add(bp.name)

    bp.record_once(register)
