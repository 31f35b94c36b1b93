"""The search page: ``/search/?q=``, results with the matched words marked, and suggestions.

A plain GET form in the theme's header leads here, so it works without
JavaScript.  The page cache keeps no page that carries a query
(``page_cache.keys``): random queries would fill the store with pages read
once, so each search runs here, against the index.
"""

from __future__ import annotations

from flask import Response, render_template, request, url_for

from broadsheet.content.search import search_public
from broadsheet.extensions import db, utcnow
from broadsheet.http_caching import cacheable
from broadsheet.site.generation import nav_pages
from broadsheet.site.head import Head, absolute
from broadsheet.site.theme import current_settings
from broadsheet.site.views import bp

SEARCH_MAX_AGE = 60


@bp.get("/search/")
def search() -> Response:
    raw = request.args.get("q", "")
    number = request.args.get("page", 1, type=int)
    now = utcnow()
    per_page = current_settings().posts_per_page
    results = search_public(db.session, raw, now=now, number=number, per_page=per_page)
    page = results.page
    site = current_settings().title
    typed = results.query.text

    def page_url(n: int) -> str:
        return url_for("site.search", q=typed, page=n if n > 1 else None)

    newer = page_url(page.number - 1) if page.has_previous else None
    older = page_url(page.number + 1) if page.has_next else None
    title = f"Search results for “{typed}” — {site}" if typed else f"Search — {site}"
    head = Head(
        title=title,
        description=f"Search every post and page of {site}.",
        canonical=absolute(url_for("site.search")),
        name="Search",
        noindex=True,  # result pages are endless and thin: search engines are told to skip them
    )
    body = render_template(
        "site/search.html",
        head=head,
        results=results,
        page=page,
        newer_url=newer,
        older_url=older,
        nav_pages=nav_pages(now),
    )
    return cacheable(body, last_modified=None, max_age=SEARCH_MAX_AGE)
