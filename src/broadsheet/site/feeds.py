"""Feeds: RSS 2.0, Atom and JSON Feed 1.1, for the site, each tag and each author.

Every feed holds the latest public posts with their full content, every link
in it absolute against ``SITE_URL`` so that a feed reader far from the site
can follow it.  Posts are read through ``content.queries``, which alone knows
what a reader may see: no draft, scheduled post, page or internal tag
reaches a feed.  Responses go out through ``cacheable`` so
that a reader polling an unchanged feed gets an empty 304.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from html import escape as html_escape
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, current_app

from broadsheet import page_cache
from broadsheet.content.cards import Byline, PostCard, TagRef
from broadsheet.content.queries import (
    author_archive,
    home_page,
    public_author,
    public_tag,
    tag_archive,
)
from broadsheet.errors import NotFound
from broadsheet.extensions import db, utcnow
from broadsheet.http_caching import cacheable, newest
from broadsheet.page_cache import cache_pages
from broadsheet.site.generation import current_settings
from broadsheet.urls import absolute_url

FEED_SIZE = 20  # the latest posts a feed carries
FEED_MAX_AGE = 300
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the date of a feed with nothing in it yet
RSS_TYPE = "application/rss+xml"
ATOM_TYPE = "application/atom+xml"
JSON_FEED_TYPE = "application/feed+json"

bp = Blueprint("feeds", __name__)
cache_pages(bp)


@lru_cache(maxsize=1024)
def absolute_html(html: str, base_url: str) -> str:
    """``html`` with every relative link and image made absolute against ``base_url``.

    Parsed as HTML (lxml), so only real ``href``/``src`` attributes change,
    never text that merely looks like one.  Kept for the posts asked for last:
    a feed polled again re-parses nothing that did not change.
    """
    if not html.strip():
        return html
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    root.make_links_absolute(base_url, resolve_base_href=False, handle_failures="ignore")
    lead = html_escape(root.text, quote=False) if root.text else ""
    return lead + "".join(lxml.html.tostring(child, encoding="unicode") for child in root)


def _changed_at(post: PostCard) -> datetime:
    return newest(post.updated_at, post.published_at) or post.updated_at


# --- feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Channel:
    """What one feed is about, in every format: its pages, its posts, its owner."""

    title: str
    description: str
    page_url: str
    feed_urls: dict[str, str]  # format -> absolute URL of that format's feed
    posts: list[PostCard]
    author: Byline | None = None

    @property
    def updated(self) -> datetime | None:
        return newest(*(_changed_at(post) for post in self.posts))


# The endpoints below, by what they follow (pages link to them through ``site.head``).
SITE_FEEDS = {"rss": "feeds.rss", "atom": "feeds.atom", "json": "feeds.json_feed"}
TAG_FEEDS = {"rss": "feeds.tag_rss", "atom": "feeds.tag_atom", "json": "feeds.tag_json"}
AUTHOR_FEEDS = {"rss": "feeds.author_rss", "atom": "feeds.author_atom", "json": "feeds.author_json"}


def _feed_urls(endpoints: dict[str, str], **values: Any) -> dict[str, str]:
    return {fmt: absolute_url(endpoint, **values) for fmt, endpoint in endpoints.items()}


def _site_channel() -> Channel:
    settings = current_settings()  # what staff named the site, as the pages show it
    page = home_page(
        db.session, now=utcnow(), number=1, per_page=FEED_SIZE, remember=page_cache.remember
    )
    return Channel(
        title=settings.title,
        description=settings.description,
        page_url=absolute_url("site.home"),
        feed_urls=_feed_urls(SITE_FEEDS),
        posts=page.items,
    )


def _tag_channel(slug: str) -> Channel:
    # Like the tag's page, its feed exists once the tag has a public post.
    tag = public_tag(db.session, slug)
    page = tag_archive(
        db.session,
        tag,
        now=utcnow(),
        number=1,
        per_page=FEED_SIZE,
        allow_empty=False,
        remember=page_cache.remember,
    )
    site = current_settings().title
    return Channel(
        title=f"{tag.name} — {site}",
        description=tag.description or f"Posts tagged {tag.name} on {site}",
        page_url=_tag_url(tag),
        feed_urls=_feed_urls(TAG_FEEDS, slug=tag.slug),
        posts=page.items,
    )


def _author_channel(slug: str) -> Channel:
    # Staff who have published nothing have no page and no feed.
    user = public_author(db.session, slug, now=utcnow()).user
    page = author_archive(
        db.session,
        user,
        now=utcnow(),
        number=1,
        per_page=FEED_SIZE,
        allow_empty=False,
        remember=page_cache.remember,
    )
    site = current_settings().title
    return Channel(
        title=f"{user.display_name} — {site}",
        description=user.bio or f"Posts by {user.display_name} on {site}",
        page_url=_author_url(user),
        feed_urls=_feed_urls(AUTHOR_FEEDS, slug=user.slug),
        posts=page.items,
        author=user,
    )


def _post_url(post: PostCard) -> str:
    return absolute_url("site.post", slug=post.slug)


def _tag_url(tag: TagRef) -> str:
    return absolute_url("site.tag", slug=tag.slug)


def _author_url(user: Byline) -> str:
    return absolute_url("site.author", slug=user.slug)


def _entry_id(post: PostCard) -> str:
    """A tag: URI (RFC 4151) that survives a change of slug, so readers never see a post twice."""
    host = urlsplit(current_app.config["SITE_URL"]).hostname
    return f"tag:{host},{post.created_at:%Y-%m-%d}:post/{post.id}"


def _person(user: Byline) -> dict[str, str]:
    # Staff email addresses stay private: a name and the author's archive only.
    return {"name": user.display_name, "uri": _author_url(user)}


def _feedgen(channel: Channel, fmt: str, mimetype: str) -> FeedGenerator:
    feed = FeedGenerator()
    # RSS names people by email, which staff keep private; Dublin Core names them instead.
    feed.load_extension("dc", atom=False, rss=True)
    feed.id(channel.feed_urls[fmt])
    feed.title(channel.title)
    feed.description(channel.description)
    feed.link(href=channel.feed_urls[fmt], rel="self", type=mimetype)
    feed.link(href=channel.page_url, rel="alternate")  # last: RSS keeps the last link only
    feed.generator("Broadsheet")
    # Fixed by the content, not the clock, so that an unchanged feed keeps its ETag.
    feed.updated(channel.updated or EPOCH)
    if channel.author is not None:
        feed.author(_person(channel.author))
    for post in channel.posts:
        url = _post_url(post)
        entry = feed.add_entry(order="append")
        entry.id(_entry_id(post))
        entry.title(post.title)
        entry.link(href=url, rel="alternate")
        entry.published(post.published_at)
        entry.updated(_changed_at(post))
        entry.summary(post.excerpt or post.title)
        entry.content(absolute_html(post.html, url), type="html")
        entry.author([_person(user) for user in post.authors])
        for user in post.authors:
            entry.dc.dc_creator(user.display_name)
        for tag in post.public_tags:
            entry.category(term=tag.name)
    return feed


def _rss(channel: Channel) -> bytes:
    body: bytes = _feedgen(channel, "rss", RSS_TYPE).rss_str()
    return body


def _atom(channel: Channel) -> bytes:
    body: bytes = _feedgen(channel, "atom", ATOM_TYPE).atom_str()
    return body


def _json_feed(channel: Channel) -> str:
    """A JSON Feed 1.1 document (https://jsonfeed.org/version/1.1)."""
    items = []
    for post in channel.posts:
        url = _post_url(post)
        item: dict[str, Any] = {
            "id": _entry_id(post),
            "url": url,
            "title": post.title,
            "content_html": absolute_html(post.html, url),
            "summary": post.excerpt,
            "date_published": post.published_at.isoformat() if post.published_at else None,
            "date_modified": _changed_at(post).isoformat(),
            "authors": [{"name": u.display_name, "url": _author_url(u)} for u in post.authors],
            "tags": [tag.name for tag in post.public_tags],
        }
        if post.feature_image:
            item["image"] = urljoin(url, post.feature_image)
        items.append({key: value for key, value in item.items() if value is not None})
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": channel.title,
        "home_page_url": channel.page_url,
        "feed_url": channel.feed_urls["json"],
        "description": channel.description,
    }
    if channel.author is not None:
        document["authors"] = [
            {"name": channel.author.display_name, "url": _author_url(channel.author)}
        ]
    document["items"] = items
    return json.dumps(document, ensure_ascii=False)


FORMATS: dict[str, tuple[str, Callable[[Channel], str | bytes]]] = {
    "rss": (RSS_TYPE, _rss),
    "atom": (ATOM_TYPE, _atom),
    "json": (JSON_FEED_TYPE, _json_feed),
}


def _respond(build: Callable[[], Channel], fmt: str) -> Response:
    try:
        channel = build()
    except NotFound:
        abort(404)
    mimetype, render = FORMATS[fmt]
    return cacheable(
        render(channel), mimetype=mimetype, last_modified=channel.updated, max_age=FEED_MAX_AGE
    )


@bp.get("/feed/")
def rss() -> Response:
    return _respond(_site_channel, "rss")


@bp.get("/feed/atom/")
def atom() -> Response:
    return _respond(_site_channel, "atom")


@bp.get("/feed.json")
def json_feed() -> Response:
    return _respond(_site_channel, "json")


@bp.get("/tag/<slug>/feed/")
def tag_rss(slug: str) -> Response:
    return _respond(lambda: _tag_channel(slug), "rss")


@bp.get("/tag/<slug>/feed/atom/")
def tag_atom(slug: str) -> Response:
    return _respond(lambda: _tag_channel(slug), "atom")


@bp.get("/tag/<slug>/feed.json")
def tag_json(slug: str) -> Response:
    return _respond(lambda: _tag_channel(slug), "json")


@bp.get("/author/<slug>/feed/")
def author_rss(slug: str) -> Response:
    return _respond(lambda: _author_channel(slug), "rss")


@bp.get("/author/<slug>/feed/atom/")
def author_atom(slug: str) -> Response:
    return _respond(lambda: _author_channel(slug), "atom")


@bp.get("/author/<slug>/feed.json")
def author_json(slug: str) -> Response:
    return _respond(lambda: _author_channel(slug), "json")
