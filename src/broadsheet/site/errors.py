"""The site's error pages (404 and 500) for every blueprint; problem details under /api/."""

from __future__ import annotations

from flask import Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import NotFound as HTTPNotFound

from broadsheet.content import queries
from broadsheet.errors import NotFound
from broadsheet.extensions import db, utcnow
from broadsheet.problems import problem
from broadsheet.site.head import Head
from broadsheet.site.theme import current_settings, site_feeds
from broadsheet.site.views import bp

NOT_FOUND_MAX_AGE = 60


def _is_api() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


@bp.app_errorhandler(NotFound)
@bp.app_errorhandler(HTTPNotFound)
def not_found(error: NotFound | HTTPNotFound) -> Response:
    if _is_api():
        return problem(404, detail="Nothing exists at this address.")
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


@bp.app_errorhandler(500)
def server_error(error: HTTPException) -> Response:
    """Say sorry and nothing else: no exception text, no stack, no database access."""
    db.session.rollback()
    if _is_api():
        response = problem(500)
    else:
        head = Head(
            title="Something went wrong",
            description="The server could not show this page.",
            canonical="",
            noindex=True,
        )
        try:
            body = render_template("site/500.html", head=head, nav_pages=[])
        except Exception:  # a broken override of the template must not hide the apology
            current_app.logger.exception("the 500 page could not be rendered")
            body = "<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
        response = Response(body, 500, mimetype="text/html")
    response.cache_control.no_store = True
    return response
