"""The Content API: public, read-only, cacheable, open to every origin."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, cast
from urllib.parse import urlencode

import orjson
from flask import Response, current_app, json, request
from flask_smorest import Blueprint
from itsdangerous import BadSignature, URLSafeSerializer

from broadsheet import page_cache
from broadsheet.api import schemas
from broadsheet.api.errors import domain_problem
from broadsheet.content import listing, queries
from broadsheet.content.cards import PostCard
from broadsheet.errors import DomainError, Invalid
from broadsheet.extensions import csrf, db, utcnow
from broadsheet.http_caching import cacheable
from broadsheet.media.rendering import feature_details
from broadsheet.media.storage import current_store
from broadsheet.newsletter import services as newsletter
from broadsheet.page_cache import cache_pages
from broadsheet.urls import absolute_url

blp = Blueprint(
    "content_api",
    __name__,
    url_prefix="/api/v1",
    description="Public, read-only content: posts, tags and authors.",
)
blp.register_error_handler(DomainError, domain_problem)
csrf.exempt(blp)  # no cookie carries authority here: the one write is the double opt-in below
cache_pages(blp)
MAX_AGE = 60
NOT_MODIFIED = {"description": "Not modified: the ETag given in If-None-Match still holds."}


def _cursor_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="broadsheet.api.cursor")


def encode_cursor(position: listing.Position, order: listing.Order) -> str:
    return str(
        _cursor_signer().dumps([position.published_at.isoformat(), position.id, order.value])
    )


def decode_cursor(token: str, order: listing.Order) -> listing.Position:
    """The position a cursor names; Invalid if forged, mangled or made for another order."""
    try:
        published_at, post_id, made_for = _cursor_signer().loads(token)
        position = listing.Position(datetime.fromisoformat(published_at), int(post_id))
    except (BadSignature, ValueError, TypeError):
        raise Invalid({"cursor": "is not a cursor this API gave out"}) from None
    if made_for != order.value or position.published_at.tzinfo is None:
        raise Invalid({"cursor": f"was made for order={made_for}, not order={order.value}"})
    return position


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = cacheable(orjson.dumps(body), mimetype="application/json", max_age=MAX_AGE)
    response.headers.update(headers or {})
    return response


def _dump_posts(posts: Sequence[PostCard]) -> list[dict[str, Any]]:
    """Posts as the Content API gives them, each feature image of ours with its variants (read
    afresh: an image's variants appear after its post is saved)."""
    details = feature_details(
        db.session,
        [p.feature_image for p in posts],
        store=current_store(),
        base=current_app.config["SITE_URL"],
    )
    site_url = current_app.config["SITE_URL"]
    return [
        {
            **_dump_post(post, site_url),
            "feature_image_details": details.get(post.feature_image or ""),
        }
        for post in posts
    ]


@lru_cache(maxsize=4096)
def _dump_post(post: PostCard, _site_url: str) -> dict[str, Any]:
    """A post as the API shows it, kept for as long as that very content is asked for: the card
    (its tags and authors included) and the site's address are the key.  Read, never changed."""
    dumped: dict[str, Any] = schemas.PostSchema().dump(post)
    return dumped


def _link(**changes: Any) -> str:
    query = request.args.to_dict(flat=False)
    for key, value in changes.items():
        query.pop(key, None)
        if value is not None:
            query[key] = [str(value)]
    # From SITE_URL, never from the request's Host: a stored page goes to every reader.
    url = absolute_url(cast(str, request.endpoint), **(request.view_args or {}))
    return f'<{url}?{urlencode(query, doseq=True)}>; rel="next"'


def _pagination(
    limit: int, page: int | None, total: int | None, cursor: str | None
) -> dict[str, Any]:
    pages = max(1, math.ceil(total / limit)) if total is not None else None
    return {"limit": limit, "page": page, "pages": pages, "total": total, "next_cursor": cursor}


@blp.get("/posts/")
@blp.arguments(schemas.PostArgsSchema, location="query", as_kwargs=True)
@blp.response(200, schemas.PostListSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def list_posts(
    tag: list[str], tag_mode: str, order: str, limit: int, author: str | None = None,
    featured: bool | None = None, published_before: datetime | None = None,
    published_after: datetime | None = None, page: int | None = None, cursor: str | None = None,
    q: str | None = None,
) -> Response:  # fmt: skip
    """Public posts, newest first unless asked otherwise.

    Walk everything with ``cursor``: each response names the next cursor (and
    a ``Link: rel="next"`` header); posts published during the walk never make
    it skip or repeat one.  ``page`` gives numbered pages with totals.
    ``q`` searches, best match first.
    """
    wanted = listing.PostFilter(
        tags=tuple(tag),
        tag_mode=listing.TagMode(tag_mode),
        author=author,
        featured=featured,
        published_before=published_before,
        published_after=published_after,
        order=listing.Order(order),
    )
    after = decode_cursor(cursor, wanted.order) if cursor else None
    found = listing.list_posts(
        db.session,
        wanted,
        now=utcnow(),
        limit=limit,
        page=page,
        after=after,
        remember=page_cache.remember,
        search=q,
    )
    next_cursor = encode_cursor(found.next, wanted.order) if found.next else None
    headers = {"Link": _link(cursor=next_cursor, page=None)} if next_cursor else {}
    body = {
        "posts": _dump_posts(found.posts),
        "pagination": _pagination(limit, None if after else (page or 1), found.total, next_cursor),
    }
    return _json(body, headers)


@blp.get("/posts/<int(max=2147483647):post_id>/")
@blp.response(200, schemas.PostOneSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def get_post(post_id: int) -> Response:
    """One public post by id."""
    post = queries.public_post(db.session, now=utcnow(), post_id=post_id, pages=False)
    return _json({"post": _dump_posts([post])[0]})


@blp.get("/posts/slug/<slug>/")
@blp.response(200, schemas.PostOneSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def get_post_by_slug(slug: str) -> Response:
    """One public post by slug."""
    post = queries.public_post(db.session, slug, now=utcnow(), pages=False)
    return _json({"post": _dump_posts([post])[0]})


@blp.get("/tags/")
@blp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@blp.response(200, schemas.TagListSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def list_tags(limit: int, page: int) -> Response:
    """Tags readers can see, by name, with their counts of public posts."""
    rows, total = listing.public_tags(db.session, now=utcnow(), page=page, limit=limit)
    tags = [{**schemas.TagSchema().dump(tag), "post_count": count} for tag, count in rows]
    return _json({"tags": tags, "pagination": _pagination(limit, page, total, None)})


@blp.get("/tags/<slug>/")
@blp.response(200, schemas.TagOneSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def get_tag(slug: str) -> Response:
    """One tag, with its count of public posts."""
    tag = queries.public_tag(db.session, slug)
    count = listing.public_post_counts(db.session, [tag.id], now=utcnow()).get(tag.id, 0)
    return _json({"tag": {**schemas.TagSchema().dump(tag), "post_count": count}})


@blp.get("/authors/")
@blp.arguments(schemas.PageArgsSchema, location="query", as_kwargs=True)
@blp.response(200, schemas.AuthorListSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def list_authors(limit: int, page: int) -> Response:
    """Authors with at least one public post, by name, with their counts."""
    rows, total = listing.public_authors(db.session, now=utcnow(), page=page, limit=limit)
    authors = [{**schemas.AuthorSchema().dump(user), "post_count": count} for user, count in rows]
    return _json({"authors": authors, "pagination": _pagination(limit, page, total, None)})


@blp.get("/authors/<slug>/")
@blp.response(200, schemas.AuthorOneSchema)
@blp.alt_response(304, description=NOT_MODIFIED["description"])
def get_author(slug: str) -> Response:
    """One author, with their count of public posts."""
    found = queries.public_author(db.session, slug, now=utcnow(), remember=page_cache.remember)
    author = {**schemas.AuthorSchema().dump(found.user), "post_count": found.post_count}
    return _json({"author": author})


@blp.post("/subscribers/")
@newsletter.subscribe_rate_limit
@blp.arguments(schemas.SubscribeSchema)
@blp.response(202, schemas.AcceptedSchema)
def subscribe(request_body: dict[str, Any]) -> Response:
    """Ask for the newsletter: a confirmation email goes to the address.

    The answer is the same whether the address was new, waiting or already
    subscribed, so it tells nobody who reads the newsletter.
    """
    newsletter.subscribe(
        db.session, email=request_body["email"], tags=request_body["tags"], now=utcnow()
    )
    db.session.commit()
    body = {"message": "If the address can receive mail, a confirmation is on its way."}
    response = Response(json.dumps(body), status=202, mimetype="application/json")
    response.cache_control.no_store = True
    return response
