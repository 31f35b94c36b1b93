"""The site's error pages (404, 500, and 503 while the database is away) for every blueprint;
problem details under /api/."""

from __future__ import annotations

import contextlib

from flask import Response, current_app, redirect, render_template, request, url_for
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as HTTPNotFound

from broadsheet.content import queries
from broadsheet.content.redirects import LEGACY_QUERY_KEYS, find_redirect
from broadsheet.errors import NotFound
from broadsheet.extensions import db, utcnow
from broadsheet.problems import problem
from broadsheet.site.head import Head
from broadsheet.site.theme import current_settings, site_feeds
from broadsheet.site.views import bp

NOT_FOUND_MAX_AGE = 60
REDIRECT_MAX_AGE = 300  # staff can delete a redirect: browsers keep a 301 only this long
RETRY_AFTER_SECONDS = 15


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@bp.app_errorhandler(NotFound)
@bp.app_errorhandler(HTTPNotFound)
def not_found(error: NotFound | HTTPNotFound) -> Response:
    if _is_api():
        return problem(404, detail="Nothing exists at this address.")
    if moved := _redirect(request.path):
        return moved
    now = utcnow()
    site = current_settings().title
    head = Head(
        title=f"Page not found — {site}",
        description="There is nothing at this address.",
        canonical="",  # an error has no address of its own
        feeds=site_feeds(),
        noindex=True,
    )
    nav_pages = queries.public_pages(db.session, now=now)
    body = render_template("site/404.html", head=head, nav_pages=nav_pages)
    response = Response(body, 404, mimetype="text/html")
    response.cache_control.public = True
    response.cache_control.max_age = NOT_FOUND_MAX_AGE
    return response


def _redirect(path: str) -> Response | None:
    """A 301 to where an old address's content lives now, from the redirects table."""
    if request.method not in ("GET", "HEAD"):
        return None
    found = find_redirect(db.session, path)
    if found is None:
        return None
    target = url_for("site.post", slug=found.post.slug) if found.post else found.target
    response = current_app.make_response(redirect(target or "/", 301))
    response.cache_control.public = True
    response.cache_control.max_age = REDIRECT_MAX_AGE
    return response


@bp.before_request
def old_query_links() -> Response | None:
    """Old WordPress links (``/?p=123``) reach the home page's view: answer them from the
    redirects table, or with a 404 (never the home page, kept under a key of its own)."""
    if request.endpoint == "site.home" and LEGACY_QUERY_KEYS & set(request.args):
        if moved := _redirect(request.full_path):
            return moved
        raise NotFound("no such old address")
    return None


@bp.app_errorhandler(500)
def server_error(error: HTTPException) -> Response:
    """Say sorry and nothing else: no exception text, no stack, no database access."""
    return _sorry(500)


@bp.app_errorhandler(OperationalError)
def database_away(error: OperationalError) -> Response:
    """The database is away (a restart, a failover): 503 with Retry-After, not a 500.

    Readers and clients are told to come back shortly; the log gets the error's kind.
    """
    current_app.logger.warning("the database is unavailable: %s", type(error.orig).__name__)
    response = _sorry(503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _sorry(status: int) -> Response:
    with contextlib.suppress(Exception):  # with the database away, even a rollback can fail
        db.session.rollback()
    if _is_api():
        response = problem(status)
    else:
        head = Head(
            title="Something went wrong" if status == 500 else "Back in a moment",
            description="The server could not show this page.",
            canonical="",
            noindex=True,
        )
        try:
            body = render_template("site/500.html", head=head, nav_pages=[], status=status)
        except Exception:  # a broken override of the template must not hide the apology
            current_app.logger.exception("the error page could not be rendered")
            body = "<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
        response = Response(body, status, mimetype="text/html")
    response.cache_control.no_store = True
    return response
