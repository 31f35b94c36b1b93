"""What a public page says about itself in its <head>: for search engines, feed readers and
link previews (Open Graph, Twitter cards, JSON-LD).  Views build a ``Head``; base.html
writes it out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from broadsheet.content.cards import Byline, PostCard
from broadsheet.content.models import PostKind
from broadsheet.content.paging import Page
from broadsheet.http_caching import newest
from broadsheet.urls import absolute_url, path_for

FEED_FORMATS = (
    ("rss", "application/rss+xml", "RSS"),
    ("atom", "application/atom+xml", "Atom"),
    ("json", "application/feed+json", "JSON Feed"),
)


@dataclass(frozen=True)
class FeedLink:
    mimetype: str
    title: str
    url: str


@dataclass
class Head:
    """What goes in a page's <head>: title, description, canonical URL, previews, JSON-LD."""

    title: str
    description: str
    canonical: str  # empty on error pages, which have no address of their own
    name: str = ""  # the page's own name, for link previews; the title adds the site's
    og_type: str = "website"
    image: str | None = None
    image_width: int = 0  # the preview image's size, when known
    image_height: int = 0
    structured_data: dict[str, Any] = field(default_factory=dict)
    feeds: list[FeedLink] = field(default_factory=list)
    previous_url: str | None = None
    next_url: str | None = None
    published: datetime | None = None
    modified: datetime | None = None
    tags: list[str] = field(default_factory=list)
    noindex: bool = False


def optional_url(endpoint: str, **values: Any) -> str | None:
    """The URL of an endpoint another part of the site provides (feeds, subscribing), or None.

    Pages link to those only when they exist, so that the site never fails
    for want of a blueprint that is switched off or not yet registered.
    """
    if endpoint not in current_app.view_functions:
        return None
    return path_for(endpoint, **values)


def absolute(path: str) -> str:
    return f"{current_app.config['SITE_URL']}{path}"


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else ""


def feed_links(endpoints: dict[str, str], label: str, **values: Any) -> list[FeedLink]:
    """Links to whichever of the feeds exist, titled after what they follow."""
    links = []
    for key, mimetype, name in FEED_FORMATS:
        url = optional_url(endpoints[key], **values)
        if url is not None:
            links.append(FeedLink(mimetype, f"{label} ({name})", absolute(url)))
    return links


def website(site: str) -> dict[str, Any]:
    return {"@type": "WebSite", "name": site, "url": f"{current_app.config['SITE_URL']}/"}


def person(user: Byline) -> dict[str, Any]:
    url = absolute_url("site.author", slug=user.slug)
    return {"@type": "Person", "name": user.display_name, "url": url}


def collection_data(
    *, site: str, name: str, description: str, canonical: str, page: Page[PostCard], **extra: Any
) -> dict[str, Any]:
    """JSON-LD for a listing: a CollectionPage whose ItemList is this page's posts."""
    return {
        "@context": "https://schema.org",
        "@type": "CollectionPage",
        "name": name,
        "description": description,
        "url": canonical,
        "isPartOf": website(site),
        "mainEntity": {
            "@type": "ItemList",
            "numberOfItems": page.total,
            "itemListElement": [
                {
                    "@type": "ListItem",
                    "position": (page.number - 1) * page.per_page + index,
                    "url": absolute_url("site.post", slug=post.slug),
                    "name": post.title,
                }
                for index, post in enumerate(page.items, start=1)
            ],
        },
        **extra,
    }


def post_data(
    post: PostCard, *, site: str, canonical: str, headline: str, description: str, tags: list[str]
) -> dict[str, Any]:
    """JSON-LD for a post (a BlogPosting) or a standalone page (a WebPage)."""
    is_page = post.kind is PostKind.PAGE
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "WebPage" if is_page else "BlogPosting",
        "headline": headline,
        "name": headline,
        "description": description,
        "url": canonical,
        "mainEntityOfPage": {"@type": "WebPage", "@id": canonical},
        "datePublished": iso(post.published_at),
        "dateModified": iso(newest(post.updated_at, post.published_at)),
        "isPartOf": website(site),
    }
    if not is_page:
        data |= {
            "author": [person(user) for user in post.authors],
            "publisher": {**website(site), "@type": "Organization"},
            "keywords": tags,
            "wordCount": post.word_count,
        }
        if post.primary_tag is not None:
            data["articleSection"] = post.primary_tag.name
    if post.feature_image:
        data["image"] = post.feature_image
    return data
