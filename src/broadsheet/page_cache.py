"""The page cache: whole public responses, kept in a store every web process shares.

A blueprint that opts in (``cache_pages(bp)``: the site, the feeds, the
Content API) has each anonymous GET answered from the store when the page
is there, with no database query at all; otherwise the view runs and a
public 200 it returns is stored for the next reader.  Logged-in staff (a
session or remember-me cookie), token-holders (an Authorization header),
the admin and the Admin API never touch it.

Invalidation is exact, not a guess with timers.  Every stored page carries
the site's *content generation* it was built in, a random token that is
replaced after each commit that changed what readers can see (posts, tags,
their links, staff names and the site's settings: ``WATCHED_TABLES``), the
scheduler's publishing included, and on every start of the app, so that a
deploy with new templates begins afresh.  Every cached request reads the
current token (a small file, or one GET from Redis); a page of another
generation is stale, and the next miss overwrites it.  Each process also
keeps its own copies of the pages it served last, used under the very same
check, so a hit reads the token and nothing else.  The store's own expiry
only frees the space of pages nobody asks for.

Why a random token rather than a counter: two processes replacing it at the
same moment cannot lose an update that matters, since whichever lands last
is still a token no reader has seen before it was written, and a page is
stored under the token read *before* its queries ran.  For the same reason a
store that drops the token (eviction, a restart) only costs a fresh one.

Stores (``page_stores``) are interchangeable behind ``PageStore``
(cachelib's interface) and ``GenerationStore``: Redis when
``PAGE_CACHE_URL`` names a server, shared by every machine; by default a
folder under the instance folder (cachelib's ``FileSystemCache`` and a
token file), shared by the processes of one machine with no server to run.
A store that fails (Redis down) makes pages uncached, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import flask
import redis
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    has_app_context,
    has_request_context,
    request,
)
from flask_login.config import COOKIE_NAME
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction
from werkzeug.http import parse_cookie

from broadsheet.extensions import DbSession
from broadsheet.logs import REQUEST_ID_HEADER, log_request, request_id_from
from broadsheet.page_stores import (
    ENTRY_SECONDS,
    Entry,
    GenerationStore,
    PageStore,
    Recent,
    embedded_stores,
    redis_stores,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

EXTENSION = "broadsheet.page_cache"
BLUEPRINTS = "broadsheet.page_cache.blueprints"  # the names of those that opted in
# Tables whose rows show on public pages: a commit that wrote any of them replaces the token.
WATCHED_TABLES = frozenset({"posts", "tags", "post_tags", "post_authors", "users", "site_settings"})
CHANGED = "broadsheet.page_cache.changed"  # a flag in Session.info until the commit
MEMORY_BYTES = 32 * 1024 * 1024  # each process's copies of the pages it served last
MEMORY_VALUES = 10_000  # and of the listing totals it used last
T = TypeVar("T")
# Headers that belong to one request, not to the page: a hit gets its own.
PER_REQUEST_HEADERS = frozenset({"x-request-id", "x-cache", "set-cookie", "content-length"})
STATE = "broadsheet.page_cache.lookup"  # in the WSGI environ, from the middleware to Flask


class PageCache:
    """Pages by URL, each valid in the content generation it was built in."""

    def __init__(
        self, store: PageStore, generation: GenerationStore, memory: int = MEMORY_BYTES
    ) -> None:
        self.store = store
        self.generation = generation
        self.recent: Recent[Entry] = Recent(memory, lambda entry: len(entry.body))
        self.values: Recent[tuple[str, Any]] = Recent(MEMORY_VALUES, lambda _value: 1)
        self._failing = False
        self._owed = False

    def invalidate(self) -> str | None:
        """Make every stored page stale at once; returns the new token (None if it failed)."""
        token = secrets.token_hex(8)
        worked, _ = self._call(self.generation.write, token)
        # Owed until it works: this process replaces the token before it serves anything.
        self._owed = not worked
        return None if self._owed else token

    def lookup(self, url: str) -> tuple[str | None, Entry | None]:
        """The current token and the page kept for ``url`` in it.

        The token is None when the store fails; the page is None when there is none of
        this generation (one of an older generation is stale, and is overwritten).
        """
        if self._owed and self.invalidate() is None:
            return None, None
        worked, token = self._call(self.generation.read)
        if not worked:
            return None, None
        if not token:
            return self.invalidate(), None
        entry = self.recent.get(url)
        if entry is not None and entry.generation == token:
            return token, entry
        worked, entry = self._call(self.store.get, _key(url))
        if worked and isinstance(entry, Entry) and entry.generation == token:
            self.recent.put(url, entry)
            return token, entry
        return token, None

    def put(self, url: str, entry: Entry) -> None:
        self.recent.put(url, entry)
        self._call(self.store.set, _key(url), entry, ENTRY_SECONDS)

    def remember(self, generation: str, name: str, compute: Callable[[], T]) -> T:
        """The value called ``name`` in ``generation``: computed once, then shared."""
        key = _key(f"value:{name}")
        held = self.values.get(key)
        if held is not None and held[0] == generation:
            return cast(T, held[1])
        worked, stored = self._call(self.store.get, key)
        if worked and isinstance(stored, tuple) and stored[0] == generation:
            value = cast(T, stored[1])
        else:
            value = compute()
            self._call(self.store.set, key, (generation, value), ENTRY_SECONDS)
        self.values.put(key, (generation, value))
        return value

    def _call(self, method: Any, *args: Any) -> tuple[bool, Any]:
        """Whether the store answered, and its answer; a failure is logged once until it works."""
        try:
            answer = method(*args)
        except (redis.RedisError, OSError):
            if not self._failing:
                log.warning("the page cache's store failed; serving pages uncached", exc_info=True)
            self._failing = True
            return False, None
        if self._failing:
            log.info("the page cache's store works again")
        self._failing = False
        return True, answer


def _key(url: str) -> str:
    return f"page:{hashlib.sha256(url.encode()).hexdigest()[:40]}"


def init_app(app: Flask) -> None:
    """Choose the store from PAGE_CACHE_URL, start a fresh generation, and wrap the app.

    Call it before wrapping ``app.wsgi_app`` in anything that rewrites the
    request (ProxyFix), so that the cache sees the request the app sees.
    """
    app.extensions[BLUEPRINTS] = set()
    app.after_request(_mark_shareable)
    url = app.config.get("PAGE_CACHE_URL") or ""
    if url == "off":
        app.extensions[EXTENSION] = None
        return
    if url:
        stores = redis_stores(url, app.config.get("PAGE_CACHE_PREFIX") or "broadsheet:page:")
    else:
        stores = embedded_stores(Path(app.instance_path) / "page-cache")
    cache = PageCache(*stores)
    app.extensions[EXTENSION] = cache
    cache.invalidate()
    app.wsgi_app = PageCacheMiddleware(app.wsgi_app, cache, app)  # type: ignore[method-assign]


def page_cache(app: Flask) -> PageCache | None:
    cache: PageCache | None = app.extensions.get(EXTENSION)
    return cache


def invalidate(app: Flask) -> None:
    """Make every cached page stale, for changes made outside a session (raw SQL, a restore)."""
    cache = page_cache(app)
    if cache is not None:
        cache.invalidate()


def remember(name: str, compute: Callable[[], T]) -> T:
    """A value derived from content (a listing's total, the most used tags), computed once per
    content generation; anything picklable.

    Pass it where a query takes a ``Remember``.  Within an anonymous request
    that the page cache looked up, the value is kept under that request's
    generation, in this process and in the store, so the second page of the
    home page or another process's miss reuses the first one's count; it is
    stored under the token read before any query ran, so, like a page, it can
    never outlive a change.  Anywhere else (staff, the cache off, the store
    down) it is simply computed.
    """
    lookup: _Lookup | None = request.environ.get(STATE) if has_request_context() else None
    cache = page_cache(current_app) if lookup is not None else None
    if lookup is None or cache is None:
        return compute()
    return cache.remember(lookup.generation, name, compute)


# Serving from the cache -----------------------------------------------------------------------


def cache_pages(bp: Blueprint) -> None:
    """Serve ``bp``'s anonymous GETs from the page cache, and keep its public 200s there."""
    bp.record_once(lambda state: state.app.extensions[BLUEPRINTS].add(bp.name))


class PageCacheMiddleware:
    """Answers a stored page before Flask is entered at all; stores what Flask marks shareable.

    A stored page is the whole response as it left the app (CORS headers
    included: they are the same for every anonymous reader), less what
    belongs to one request: its id, which a hit gets afresh along with its
    log line.
    """

    def __init__(self, app: WSGIApplication, cache: PageCache, flask_app: Flask) -> None:
        self.app = app
        self.cache = cache
        config = flask_app.config
        self.cookies = (
            config["SESSION_COOKIE_NAME"],
            config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME),
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD") or not self._anonymous(environ):
            return self.app(environ, start_response)
        # Read before any query runs: a change committed after this point replaces the token,
        # so a page built from older rows is stored where nobody will look for it.
        address = _address(environ)
        generation, entry = self.cache.lookup(address)
        if generation is None:
            return self.app(environ, start_response)
        if entry is not None:
            return self._serve(entry, environ, start_response, started)
        environ[STATE] = _Lookup(generation, address)
        return self._keep(environ, start_response)

    def _anonymous(self, environ: WSGIEnvironment) -> bool:
        if "HTTP_AUTHORIZATION" in environ:
            return False
        if "HTTP_COOKIE" not in environ:
            return True
        cookies = parse_cookie(environ)
        return not any(name in cookies for name in self.cookies)

    def _serve(
        self, entry: Entry, environ: WSGIEnvironment, start_response: StartResponse, started: float
    ) -> Iterable[bytes]:
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        answer: Iterable[bytes]
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
            response = Response(entry.body, entry.status, entry.headers)
            response.headers["X-Cache"] = "HIT"
            response.headers[REQUEST_ID_HEADER] = request_id
            response.make_conditional(environ)  # the stored ETag and date answer with a 304
            status, answer = response.status_code, response(environ, start_response)
        else:  # the common case, answered without building a Response
            headers = [
                *entry.headers,
                ("Content-Length", str(len(entry.body))),
                ("X-Cache", "HIT"),
                (REQUEST_ID_HEADER, request_id),
            ]
            start_response(f"{entry.status} {HTTPStatus(entry.status).phrase}", headers)
            status = entry.status
            answer = [] if environ["REQUEST_METHOD"] == "HEAD" else [entry.body]
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        log_request(environ["REQUEST_METHOD"], path, status, started, request_id)
        return answer

    def _keep(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Call the app; store its answer when ``_mark_shareable`` said it may be."""
        answer: dict[str, Any] = {}

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = self.app(environ, remember)
        lookup: _Lookup = environ[STATE]
        if not lookup.shareable:
            return body
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        headers = [(k, v) for k, v in answer["headers"] if k.lower() not in PER_REQUEST_HEADERS]
        self.cache.put(lookup.address, Entry(lookup.generation, 200, headers, data))
        return [data]


@dataclass
class _Lookup:
    generation: str
    address: str
    shareable: bool = False


def _address(environ: WSGIEnvironment) -> str:
    """The URL asked for, as sent (read from the environ: building ``request.url`` would cost
    as much as the rest of a cached answer)."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return f"{environ['wsgi.url_scheme']}://{host}{path}?{environ.get('QUERY_STRING', '')}"


def _mark_shareable(response: Response) -> Response:
    """Tell the middleware whether this response may be stored for every anonymous reader."""
    lookup: _Lookup | None = request.environ.get(STATE)
    if lookup is None:
        return response
    response.headers["X-Cache"] = "MISS"
    lookup.shareable = (
        request.method == "GET"
        and request.blueprint in current_app.extensions[BLUEPRINTS]
        and not (request.endpoint or "").endswith(".static")
        and _shareable(response)
    )
    return response


def _shareable(response: Response) -> bool:
    """A whole 200 the view declared public, that sets no cookie.

    The request came without one (``_anonymous``), so whatever it read of the
    session (templates ask who is signed in) was empty.
    """
    return (
        response.status_code == 200
        and bool(response.cache_control.public)
        and not response.cache_control.no_store
        and not response.direct_passthrough
        and not response.is_streamed
        and "Set-Cookie" not in response.headers
        and not flask.session.modified  # saved as a cookie after this hook
    )


# Noticing changes -----------------------------------------------------------------------------


def mark_changed(session: DbSession) -> None:
    """Replace the generation when ``session`` commits: for bulk writes no event can see
    (COPY, raw SQL).  Changes made through the ORM are noticed without it."""
    session.info[CHANGED] = True


def _touches(tables: Iterable[Any]) -> bool:
    return any(getattr(table, "name", None) in WATCHED_TABLES for table in tables)


@event.listens_for(Session, "after_flush")
def _notice_flush(session: Session, _flush: UOWTransaction) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if _touches(getattr(type(obj), "__table__", None) for obj in changed):
        session.info[CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _notice_statement(state: ORMExecuteState) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and _touches(
        [getattr(state.statement, "table", None)]
    ):
        state.session.info[CHANGED] = True


@event.listens_for(Session, "after_commit")
def _replace_generation(session: Session) -> None:
    if session.info.pop(CHANGED, False) and has_app_context():
        cache = page_cache(current_app)
        if cache is not None:
            cache.invalidate()


@event.listens_for(Session, "after_soft_rollback")
def _forget_changes(session: Session, _previous: object) -> None:
    if not session.in_transaction():
        session.info.pop(CHANGED, None)
