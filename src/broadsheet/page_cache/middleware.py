"""Serving from the page cache: a stored page is answered before Flask is entered at all.

A stored page is the whole response as it left the app (CORS headers
included: they are the same for every anonymous reader), less what belongs
to one request: its id, which a hit gets afresh along with its log line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import flask
from flask import Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_login.config import COOKIE_NAME
from flask_login.utils import decode_cookie
from itsdangerous import BadData
from werkzeug.http import parse_cookie

from broadsheet.logs import REQUEST_ID_HEADER, log_request, request_id_from
from broadsheet.page_cache.cache import BLUEPRINTS, READ_ENDPOINT, STATE, Lookup, PageCache
from broadsheet.page_cache.entries import Entry
from broadsheet.page_cache.keys import Keys

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Headers that belong to one request, not to the page: a hit gets its own.
PER_REQUEST_HEADERS = frozenset({"x-request-id", "x-cache", "set-cookie", "content-length"})


class PageCacheMiddleware:
    """Answers a stored page before Flask is entered; stores what Flask marks shareable."""

    def __init__(self, app: WSGIApplication, cache: PageCache, flask_app: Flask) -> None:
        self.app = app
        self.cache = cache
        self.flask_app = flask_app
        config = flask_app.config
        self.keys = Keys(flask_app.url_map, config.get("TRUSTED_HOSTS"), config["SITE_URL"])
        self.session_cookie = config["SESSION_COOKIE_NAME"]
        self.remember_cookie = config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME)
        self.secret = config["SECRET_KEY"]
        self.sessions = SecureCookieSessionInterface().get_signing_serializer(flask_app)
        self.session_seconds = int(flask_app.permanent_session_lifetime.total_seconds())

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        if (
            environ.get("REQUEST_METHOD") not in ("GET", "HEAD")
            or "HTTP_AUTHORIZATION" in environ
            or not self.keys.trusted(environ)  # Flask answers 400
            or self._staff(environ)
        ):
            return self.app(environ, start_response)
        endpoint = self.keys.endpoint(environ)
        environ[READ_ENDPOINT] = endpoint
        cacheable = (
            self.cache.store is not None
            and endpoint is not None
            and endpoint.rpartition(".")[0] in self.flask_app.extensions[BLUEPRINTS]
            and not endpoint.endswith(".static")
        )
        if not cacheable:
            # Not a page to keep; its values (``remember``) are still shared.
            generation = self.cache.current()
            if generation is not None:
                environ[STATE] = Lookup(generation, "", cacheable=False)
            return self.app(environ, start_response)
        address, query = self.keys.address(environ, endpoint)
        # Read before any query runs: a change committed after this point replaces the token,
        # so a page built from older rows is stored where nobody will look for it.
        generation, entry = self.cache.lookup(address)
        if generation is None:
            return self.app(environ, start_response)
        if entry is not None:
            return self._serve(entry, environ, start_response, started)
        self.keys.as_built(environ, query)
        environ[STATE] = Lookup(generation, address, cacheable=True)
        return self._keep(environ, start_response)

    def _staff(self, environ: WSGIEnvironment) -> bool:
        """Whether the request carries a live staff session or remember-me cookie.

        Only a cookie this site signed counts: any other (``session=x``) is no
        reason to skip the cache, and a miss is built without it.
        """
        if "HTTP_COOKIE" not in environ:
            return False
        cookies = parse_cookie(environ)
        session = cookies.get(self.session_cookie)
        if session and self.sessions is not None:
            try:
                data = self.sessions.loads(session, max_age=self.session_seconds)
            except BadData:
                data = None
            if isinstance(data, dict) and data.get("_user_id") is not None:
                return True
        remember = cookies.get(self.remember_cookie)
        return bool(remember) and decode_cookie(remember, key=self.secret) is not None

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
        """Call the app; store its answer when ``mark_shareable`` said it may be."""
        answer: dict[str, Any] = {}

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return start_response(status, headers, exc_info)

        body = self.app(environ, remember)
        lookup: Lookup = environ[STATE]
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


def mark_shareable(response: Response) -> Response:
    """Tell the middleware whether this response may be stored for every anonymous reader."""
    lookup: Lookup | None = request.environ.get(STATE)
    if lookup is None:
        return response
    if lookup.cacheable:
        response.headers["X-Cache"] = "MISS"
    lookup.shareable = (
        lookup.cacheable
        and request.method == "GET"
        and request.blueprint in current_app.extensions[BLUEPRINTS]
        and _shareable(response)
    )
    return response


def _shareable(response: Response) -> bool:
    """A whole 200 the view declared public, that sets no cookie.

    The request reached the app without cookies (``Keys.as_built``), so
    whatever it read of the session (templates ask who is signed in) was empty.
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
