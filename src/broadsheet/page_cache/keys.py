"""What a page is kept under: the path, and the query parameters its view reads.

Anything else in a query string (``/?x=1``, a tracking tag) changes nothing
on the page, so it must not make a new entry: the middleware keys the
request on the parameters listed here for its endpoint (none when it is not
listed) and hands the app the request with only those, so the page it
builds is exactly the one the key names.  The Host must be the site's own
(``TRUSTED_HOSTS``, from ``SITE_URL``: any other gets Flask's 400), and a
page is built as if asked for at ``SITE_URL`` itself, so that a Host with an
odd port or spelling can neither make new entries nor leave its name in one.
This table is the one place that
says which parameters an endpoint of a cached blueprint reads; a view that
starts reading a new one must be added here, or it never sees it.

A search is the exception (``NEVER_KEPT``): its answer depends on free text,
so keeping it would make one entry per query ever typed, each read about
once, pushing out the pages that are read again.  A request carrying a
search is passed to its view whole and its answer is not stored; the same
endpoint without one (the empty search form, a list without ``q``) is kept
as usual.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, MapAdapter, RequestRedirect
from werkzeug.sansio.utils import host_is_trusted

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

# The Content API's documented filters and paging (api/schemas.py); the site's pages read none.
QUERY_PARAMETERS: dict[str, frozenset[str]] = {
    "content_api.list_posts": frozenset(
        {
            "tag",
            "tag_mode",
            "order",
            "limit",
            "author",
            "featured",
            "published_before",
            "published_after",
            "page",
            "cursor",
            "q",  # read, but a request with it is never kept (NEVER_KEPT)
        }
    ),
    "content_api.list_tags": frozenset({"limit", "page"}),
    "content_api.list_authors": frozenset({"limit", "page"}),
    # Old WordPress links (``/?p=123``), answered from the redirects table (site/errors.py).
    "site.home": frozenset({"p", "page_id", "cat", "tag"}),
}

# Parameters that make a request a search: present (even empty), the page is never kept.
NEVER_KEPT: dict[str, frozenset[str]] = {
    "site.search": frozenset({"q", "page"}),
    "content_api.list_posts": frozenset({"q"}),
}


class Keys:
    """Which endpoint a request is for, and the address and query string it is kept under."""

    def __init__(self, url_map: Map, trusted_hosts: list[str] | None, site_url: str) -> None:
        self.url_map = url_map
        self.trusted_hosts = trusted_hosts
        site = urlsplit(site_url)
        self.scheme, self.host = site.scheme, site.netloc
        self.adapters: dict[str, MapAdapter] = {}

    def trusted(self, environ: WSGIEnvironment) -> bool:
        """Whether the Host is the site's own; any other gets Flask's 400, never a stored page."""
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        return not self.trusted_hosts or host_is_trusted(host, self.trusted_hosts)

    def endpoint(self, environ: WSGIEnvironment) -> str | None:
        """The endpoint of a page that may be kept; None for a 404, a redirect or a search."""
        script = environ.get("SCRIPT_NAME") or ""
        adapter = self.adapters.get(script)
        if adapter is None:  # bound once per mount point: matching only reads it
            adapter = self.adapters[script] = self.url_map.bind(
                "localhost",  # no host matching: the name is not looked at
                script_name=script or None,
            )
        try:
            endpoint, _ = adapter.match(environ.get("PATH_INFO") or "/", "GET")
        except (HTTPException, RequestRedirect):
            return None  # a 404 or a redirect: never stored, and read nothing
        never = NEVER_KEPT.get(str(endpoint))
        if never and environ.get("QUERY_STRING"):
            names = {k for k, _ in parse_qsl(environ["QUERY_STRING"], keep_blank_values=True)}
            if names & never:
                return None  # a search: passed through whole, never stored
        return str(endpoint)

    def address(self, environ: WSGIEnvironment, endpoint: str | None) -> tuple[str, str]:
        """The address the page is kept under, and the query string the view is given.

        Read from the environ: building ``request.url`` would cost as much as
        the rest of a cached answer.
        """
        wanted = QUERY_PARAMETERS.get(endpoint or "", frozenset())
        raw = environ.get("QUERY_STRING", "")
        query = ""
        if raw and wanted:
            pairs = [(k, v) for k, v in parse_qsl(raw, keep_blank_values=True) if k in wanted]
            # In order of name (repeated values keep theirs): the same parameters in another
            # order are the same page.
            query = urlencode(sorted(pairs, key=lambda pair: pair[0]))
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        return f"{path}?{query}", query

    def as_built(self, environ: WSGIEnvironment, query: str) -> None:
        """Make ``environ`` the request the stored page answers: the site's own address, only
        the parameters the key holds, and no cookie."""
        environ["QUERY_STRING"] = query
        environ.pop("HTTP_COOKIE", None)  # a public page is the same for every reader
        environ["HTTP_HOST"] = self.host
        environ["wsgi.url_scheme"] = self.scheme


def store_key(address: str) -> str:
    """The store's key for the page kept under ``address``.

    ``p2:`` since entries became sealed data: the pickles stored under the
    older ``page:`` keys are never read, and simply expire.
    """
    return f"p2:{hashlib.sha256(address.encode()).hexdigest()[:40]}"
