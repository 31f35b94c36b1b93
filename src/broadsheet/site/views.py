"""Public pages: home, posts and standalone pages, tag, author and date archives.

Each view parses the URL, asks ``content.queries`` for what a reader may see
(a fixed number of queries whatever the page holds), and renders it with
the head a search engine or a link preview needs.  Every page goes out
through ``cacheable``: an ETag, Last-Modified, a 304 when nothing changed.
The theme's helpers (static files, dates, the site's names) are in ``site/theme.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, render_template, url_for
from werkzeug.routing import RequestRedirect

from broadsheet import page_cache
from broadsheet.content import queries
from broadsheet.content.models import PostKind
from broadsheet.errors import NotFound
from broadsheet.extensions import db, utcnow
from broadsheet.http_caching import cacheable, newest
from broadsheet.media.rendering import feature_image, responsive_html
from broadsheet.media.storage import current_store
from broadsheet.page_cache import cache_pages
from broadsheet.site.feeds import AUTHOR_FEEDS, TAG_FEEDS
from broadsheet.site.generation import nav_pages
from broadsheet.site.head import (
    FeedLink,
    Head,
    absolute,
    collection_data,
    feed_links,
    person,
    post_data,
)
from broadsheet.site.theme import SiteBlueprint, current_settings, init_theme, site_feeds
from broadsheet.urls import absolute_url, path_for

# How long a browser or proxy may reuse a page before asking again (it then gets a cheap 304).
FRONT_PAGES_MAX_AGE = 60  # home and the first page of each archive change with every post
DEEP_PAGES_MAX_AGE = 300
POST_MAX_AGE = 300
STANDALONE_MAX_AGE = 600

bp = SiteBlueprint(
    "site",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/site",
)
cache_pages(bp)
init_theme(bp)


# Building a page ----------------------------------------------------------------------------


def _listing_modified(page: queries.Page[queries.PostCard]) -> datetime | None:
    return newest(*(p.updated_at for p in page.items), *(p.published_at for p in page.items))


def _render(
    template: str,
    *,
    now: datetime,
    max_age: int,
    last_modified: datetime | None,
    status: int = 200,
    **context: Any,
) -> Response:
    menu = nav_pages(now)
    body = render_template(template, nav_pages=menu, **context)
    return cacheable(
        body,
        last_modified=newest(last_modified, *(p.updated_at for p in menu)),
        max_age=max_age,
        status=status,
    )


class MovedPermanently(RequestRedirect):
    code = 301


def _page_number(number: int | None, endpoint: str, **values: Any) -> int:
    """The page asked for; an explicit page 1 is sent to the archive's own URL instead."""
    if number is None:
        return 1
    if number == 1:
        raise MovedPermanently(url_for(endpoint, **values))
    return number


def _per_page() -> int:
    return current_settings().posts_per_page


def _pagination_urls(
    page: queries.Page[queries.PostCard], endpoint: str, **values: Any
) -> tuple[str | None, str | None]:
    newer = _page_url(endpoint, page.number - 1, values) if page.has_previous else None
    older = _page_url(endpoint, page.number + 1, values) if page.has_next else None
    return newer, older


def _page_url(endpoint: str, number: int, values: dict[str, Any]) -> str:
    """Page 1 of a listing lives at the listing's own URL, without /page/1/."""
    if number > 1:
        return path_for(endpoint, number=number, **values)
    return path_for(endpoint, **values)


def _listing(
    template: str,
    *,
    page: queries.Page[queries.PostCard],
    now: datetime,
    endpoint: str,
    values: dict[str, Any],
    name: str,
    title: str,
    description: str,
    feeds: list[FeedLink],
    structured_extra: dict[str, Any] | None = None,
    **context: Any,
) -> Response:
    """Render one page of a listing (home or an archive) with its head and pagination."""
    newer, older = _pagination_urls(page, endpoint, **values)
    canonical = absolute(_page_url(endpoint, page.number, values))
    if page.number > 1:
        title = f"{title} — Page {page.number} of {page.pages}"
    head = Head(
        title=title,
        description=description,
        canonical=canonical,
        name=name if page.number == 1 else f"{name} (page {page.number})",
        structured_data=collection_data(
            site=current_settings().title,
            name=name,
            description=description,
            canonical=canonical,
            page=page,
            **(structured_extra or {}),
        ),
        feeds=feeds,
        previous_url=newer and absolute(newer),
        next_url=older and absolute(older),
    )
    return _render(
        template,
        now=now,
        max_age=FRONT_PAGES_MAX_AGE if page.number == 1 else DEEP_PAGES_MAX_AGE,
        last_modified=_listing_modified(page),
        head=head,
        page=page,
        newer_url=newer,
        older_url=older,
        **context,
    )


# Views --------------------------------------------------------------------------------------


@bp.get("/")
@bp.get("/page/<int:number>/")
def home(number: int | None = None) -> Response:
    number = _page_number(number, "site.home")
    now = utcnow()
    page = queries.home_page(
        db.session, now=now, number=number, per_page=_per_page(), remember=page_cache.remember
    )
    site = current_settings().title
    description = current_settings().description
    return _listing(
        "site/home.html",
        page=page,
        now=now,
        endpoint="site.home",
        values={},
        name=site,
        title=f"{site} — {description}" if number == 1 else site,
        description=description,
        feeds=site_feeds(),
    )


@bp.get("/tag/<slug>/")
@bp.get("/tag/<slug>/page/<int:number>/")
def tag(slug: str, number: int | None = None) -> Response:
    number = _page_number(number, "site.tag", slug=slug)
    now = utcnow()
    found = queries.public_tag(db.session, slug)
    page = queries.tag_archive(
        db.session,
        found,
        now=now,
        number=number,
        per_page=_per_page(),
        allow_empty=False,
        remember=page_cache.remember,
    )
    site = current_settings().title
    description = found.description or f"Every post tagged {found.name} on {site}."
    return _listing(
        "site/tag.html",
        page=page,
        now=now,
        endpoint="site.tag",
        values={"slug": found.slug},
        name=f"Tag Archives: {found.name}",
        title=f"Tag Archives: {found.name} — {site}",
        description=description,
        feeds=[
            *feed_links(TAG_FEEDS, f"{site}: {found.name}", slug=found.slug),
            *site_feeds(),
        ],
        structured_extra={"about": {"@type": "Thing", "name": found.name}},
        tag=found,
    )


@bp.get("/author/<slug>/")
@bp.get("/author/<slug>/page/<int:number>/")
def author(slug: str, number: int | None = None) -> Response:
    number = _page_number(number, "site.author", slug=slug)
    now = utcnow()
    user = queries.public_byline(db.session, slug, now=now)
    page = queries.author_archive(
        db.session,
        user,
        now=now,
        number=number,
        per_page=_per_page(),
        allow_empty=False,
        remember=page_cache.remember,
    )
    site = current_settings().title
    return _listing(
        "site/author.html",
        page=page,
        now=now,
        endpoint="site.author",
        values={"slug": user.slug},
        name=user.display_name,
        title=f"{user.display_name} — {site}",
        description=user.bio or f"Posts by {user.display_name} on {site}.",
        feeds=[
            *feed_links(AUTHOR_FEEDS, f"{site}: {user.display_name}", slug=user.slug),
            *site_feeds(),
        ],
        structured_extra={"about": person(user)},
        user=user,
    )


@bp.get("/<int(fixed_digits=4):year>/")
@bp.get("/<int(fixed_digits=4):year>/page/<int:number>/")
def year(year: int, number: int | None = None) -> Response:
    if number is None:
        # A post whose title was a year holds that slug; it is found before the archive.
        try:
            return _post_page(queries.public_post_page(db.session, f"{year:04d}", now=utcnow()))
        except NotFound:
            pass
    return _date_page(year, None, number)


@bp.get("/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/")
@bp.get("/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/page/<int:number>/")
def month(year: int, month: int, number: int | None = None) -> Response:
    return _date_page(year, month, number)


def _date_page(year: int, month: int | None, number: int | None) -> Response:
    endpoint = "site.year" if month is None else "site.month"
    values: dict[str, Any] = {"year": year} if month is None else {"year": year, "month": month}
    number = _page_number(number, endpoint, **values)
    now = utcnow()
    page = queries.date_archive(
        db.session,
        year=year,
        month=month,
        now=now,
        number=number,
        per_page=_per_page(),
        allow_empty=False,
        remember=page_cache.remember,
    )
    label = str(year) if month is None else f"{datetime(year, month, 1):%B %Y}"
    site = current_settings().title
    return _listing(
        "site/date.html",
        page=page,
        now=now,
        endpoint=endpoint,
        values=values,
        name=f"Archives: {label}",
        title=f"Archives: {label} — {site}",
        description=f"Posts published on {site} in {label}.",
        feeds=site_feeds(),
        label=label,
    )


@bp.get("/<slug>/")
def post(slug: str) -> Response:
    return _post_page(queries.public_post_page(db.session, slug, now=utcnow()))


def _post_page(shown: queries.PostPage) -> Response:
    now = utcnow()
    found, older, newer = shown.post, shown.older, shown.newer
    is_page = found.kind is PostKind.PAGE
    canonical = absolute_url("site.post", slug=found.slug)
    site = current_settings().title
    description = found.meta_description or found.excerpt or current_settings().description
    headline = found.meta_title or found.title
    authors = found.authors
    tags = [tag.name for tag in found.public_tags]
    data = post_data(
        found, site=site, canonical=canonical, headline=headline, description=description, tags=tags
    )
    store = current_store()
    feature = feature_image(db.session, found.feature_image, store=store, base=absolute("/"))
    body = responsive_html(db.session, found.html, store=store, eager_first=feature is None)
    head = Head(
        title=f"{headline} — {site}",
        description=description,
        canonical=canonical,
        name=headline,
        og_type="website" if is_page else "article",
        image=feature.og_url if feature else None,
        image_width=feature.og_width if feature else 0,
        image_height=feature.og_height if feature else 0,
        structured_data=data,
        feeds=site_feeds(),
        published=None if is_page else found.published_at,
        modified=None if is_page else newest(found.updated_at, found.published_at),
        tags=[] if is_page else tags,
    )
    return _render(
        "site/page.html" if is_page else "site/post.html",
        now=now,
        max_age=STANDALONE_MAX_AGE if is_page else POST_MAX_AGE,
        last_modified=newest(
            found.updated_at,
            found.published_at,
            *(link.updated_at for link in (older, newer) if link is not None),
        ),
        head=head,
        post=found,
        body=body,
        feature=feature,
        authors=authors,
        older=older,
        newer=newer,
    )


# Errors -------------------------------------------------------------------------------------
