"""HTTP caching for everything readers fetch: ETag, Last-Modified, 304s, Cache-Control."""

from __future__ import annotations

from datetime import datetime

from flask import Response, make_response, request


def newest(*moments: datetime | None) -> datetime | None:
    """The latest of the moments given (None when none is known): a Last-Modified."""
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def cacheable(
    body: str | bytes,
    *,
    mimetype: str = "text/html",
    last_modified: datetime | None = None,
    max_age: int = 60,
    status: int = 200,
) -> Response:
    """A response with a strong ETag (a hash of the body) and Last-Modified.

    A request whose If-None-Match or If-Modified-Since still holds gets an
    empty 304 instead.  ``max_age`` is how long a browser or proxy may reuse
    it without asking; after that it revalidates cheaply.
    """
    response: Response = make_response(body, status)
    response.mimetype = mimetype
    if last_modified is not None:
        response.last_modified = last_modified
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    response.add_etag()
    response.make_conditional(request)  # turns it into a 304 in place when it can
    return response
