"""Security headers on every response, pages answered from the page cache included.

``SecurityHeaders`` is WSGI middleware wrapped around everything else (the
page cache answers stored pages before Flask is entered, so a Flask hook
would miss them): it adds each header below that the response does not set
itself.  Stored pages are kept without these headers and get them on the
way out, like any other response.

- ``Content-Security-Policy``: scripts, styles, fonts and frames from the
  site itself only; no inline script and no ``eval`` anywhere, so every
  script lives in a static file (templates carry none, not even with a
  nonce: a page the cache stores is served to many readers, and a nonce
  served twice is no nonce).  Inline ``style`` attributes are allowed
  (``style-src-attr``); ``<style>`` elements are not.  Images may come from
  any HTTPS address, since posts show them.  No page may be framed by
  another site (``frame-ancestors 'none'``, and ``X-Frame-Options: DENY`` for
  older browsers); the admin's preview, which the editor shows in a frame,
  allows its own site (``framed_by_self``).
- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
  strict-origin-when-cross-origin`` (another site never sees a path, such
  as an unsubscribe link's token).
- ``Strict-Transport-Security`` for a year when ``SITE_URL`` is https.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

HSTS_SECONDS = 365 * 24 * 3600


def content_security_policy(frame_ancestors: str = "'none'") -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' https: data:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


def security_headers(site_url: str) -> list[tuple[str, str]]:
    """The headers every response carries unless it sets its own."""
    headers = [
        ("Content-Security-Policy", content_security_policy()),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ]
    if site_url.startswith("https://"):
        headers.append(("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"))
    return headers


def framed_by_self(response: Response) -> Response:
    """Let pages of this site (and no other) show ``response`` in a frame."""
    response.headers["Content-Security-Policy"] = content_security_policy("'self'")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


class SecurityHeaders:
    """Adds the security headers a response lacks, whoever answered it."""

    def __init__(self, app: WSGIApplication, headers: list[tuple[str, str]]) -> None:
        self.app = app
        self.headers = headers

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in self.headers if h[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def init_app(app: Flask) -> None:
    """Wrap ``app.wsgi_app``; call it last, so that it wraps the page cache too."""
    headers = security_headers(app.config["SITE_URL"])
    app.wsgi_app = SecurityHeaders(app.wsgi_app, headers)  # type: ignore[method-assign]
