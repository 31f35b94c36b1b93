"""The sitemap (split in parts past SITEMAP_MAX_URLS) and robots.txt.

Every URL is absolute against ``SITE_URL``; posts, tags and authors are read
through ``content.sitemap``, so nothing a reader may not see is listed.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app
from lxml import etree

from broadsheet.content.sitemap import (
    SITEMAP_SECTIONS,
    sitemap_section,
    sitemap_section_lastmod,
    sitemap_section_summary,
)
from broadsheet.extensions import db, utcnow
from broadsheet.http_caching import cacheable
from broadsheet.page_cache import cache_pages
from broadsheet.urls import absolute_url

SITEMAP_MAX_URLS = 50_000  # the sitemaps.org limit per file; SITEMAP_MAX_URLS in config lowers it
SITEMAP_MAX_AGE = 3600
ROBOTS_MAX_AGE = 86400
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"

bp = Blueprint("sitemap", __name__)
cache_pages(bp, streams=True)  # sections are read through a server-side cursor

# Each section's URLs, from a slug; the home page leads the "posts" section.
_SECTION_PAGES = {"posts": "site.post", "tags": "site.tag", "authors": "site.author"}
_SLUG_MARK = "slug-placeholder"
_PLAIN_SLUG = re.compile(r"[a-z0-9-]+\Z")  # what make_slug gives: nothing to quote


def _sitemap_limit() -> int:
    return int(current_app.config.get("SITEMAP_MAX_URLS", SITEMAP_MAX_URLS))


def _section_summary(section: str, now: datetime) -> tuple[int, datetime | None]:
    """A section's URL count (the home page leads the posts) and its newest date."""
    size, newest = sitemap_section_summary(db.session, section, now=now)
    return (size + 1 if section == "posts" else size), newest


def _window(section: str, number: int, limit: int) -> tuple[int, int]:
    """Offset and limit in the section's query for part ``number`` (the home page takes
    the first place of the first posts part)."""
    start = (number - 1) * limit
    if section != "posts":
        return start, limit
    return (0, limit - 1) if number == 1 else (start - 1, limit)


def _part_urls(
    section: str, number: int, limit: int, now: datetime
) -> Iterator[tuple[str, datetime | None]]:
    if section == "posts" and number == 1:
        yield absolute_url("site.home"), None
    offset, count = _window(section, number, limit)
    # Routing builds the URL once; 50,000 url_for calls would take most of the request.
    prefix, _, suffix = absolute_url(_SECTION_PAGES[section], slug=_SLUG_MARK).partition(_SLUG_MARK)
    for slug, lastmod in sitemap_section(db.session, section, now=now, offset=offset, limit=count):
        safe = slug if _PLAIN_SLUG.match(slug) else quote(slug, safe="")
        yield f"{prefix}{safe}{suffix}", lastmod


def _w3c_date(moment: datetime) -> str:
    # isoformat is several times faster than strftime, which counts at 50,000 rows.
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _sitemap_document(
    root: str, child: str, entries: Iterable[tuple[str, datetime | None]]
) -> tuple[bytes, datetime | None]:
    """A urlset or sitemapindex, written entry by entry; returns it and its newest date."""
    newest: datetime | None = None
    buffer = io.BytesIO()
    with etree.xmlfile(buffer, encoding="utf-8") as xml:
        xml.write_declaration()
        with xml.element(f"{{{SITEMAP_NS}}}{root}", nsmap={None: SITEMAP_NS}):
            for loc, lastmod in entries:
                with xml.element(f"{{{SITEMAP_NS}}}{child}"):
                    with xml.element(f"{{{SITEMAP_NS}}}loc"):
                        xml.write(loc)
                    if lastmod is not None:
                        newest = lastmod if newest is None else max(newest, lastmod)
                        with xml.element(f"{{{SITEMAP_NS}}}lastmod"):
                            xml.write(_w3c_date(lastmod))
    return buffer.getvalue(), newest


def _sitemap_response(body: bytes, last_modified: datetime | None) -> Response:
    return cacheable(
        body, mimetype="application/xml", last_modified=last_modified, max_age=SITEMAP_MAX_AGE
    )


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    """Every public URL in one urlset, or past the limit an index of the parts."""
    now, limit = utcnow(), _sitemap_limit()
    summaries = {section: _section_summary(section, now) for section in SITEMAP_SECTIONS}
    if sum(size for size, _ in summaries.values()) <= limit:
        urls = (
            url
            for section in SITEMAP_SECTIONS
            for url in _part_urls(section, 1, summaries[section][0], now)
        )
        return _sitemap_response(*_sitemap_document("urlset", "url", urls))
    parts = []
    for section, (size, newest) in summaries.items():
        count = math.ceil(size / limit)
        for number in range(1, count + 1):
            lastmod = newest
            if count > 1:  # each part of a split section has its own date
                offset, window = _window(section, number, limit)
                lastmod = sitemap_section_lastmod(
                    db.session, section, now=now, offset=offset, limit=window
                )
            url = absolute_url("sitemap.sitemap_part", section=section, number=number)
            parts.append((url, lastmod))
    return _sitemap_response(*_sitemap_document("sitemapindex", "sitemap", parts))


@bp.get("/sitemap-<any(posts, tags, authors):section>-<int:number>.xml")
def sitemap_part(section: str, number: int) -> Response:
    """One part of a split sitemap; part 1 of a section always exists (perhaps empty)."""
    now, limit = utcnow(), _sitemap_limit()
    size, _ = _section_summary(section, now)
    if number < 1 or (number > 1 and (number - 1) * limit >= size):
        abort(404)
    return _sitemap_response(
        *_sitemap_document("urlset", "url", _part_urls(section, number, limit, now))
    )


@bp.get("/robots.txt")
def robots() -> Response:
    """Crawlers may read everything a reader may, and learn where the sitemap is."""
    lines = [
        "User-agent: *",
        "Disallow: /admin/",
        "Disallow: /api/v1/admin/",
        "",
        f"Sitemap: {absolute_url('sitemap.sitemap')}",
    ]
    return cacheable("\n".join(lines) + "\n", mimetype="text/plain", max_age=ROBOTS_MAX_AGE)
