"""The sitemap and robots.txt, as a search engine's crawler reads them, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from broadsheet import page_cache
from broadsheet.accounts.models import Role
from broadsheet.content.models import PostKind, PostStatus
from tests.conftest import NOW

SITE = "https://blog.example.com"
NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)


def read_sitemap(client: FlaskClient, url: str, root: str) -> dict[str, str | None]:
    """Fetch a sitemap file, check its shape, and map each <loc> to its <lastmod>."""
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.content_type == "application/xml; charset=utf-8"
    document = etree.fromstring(response.data)
    assert document.tag == f"{{{NS}}}{root}"
    child = "url" if root == "urlset" else "sitemap"
    found: dict[str, str | None] = {}
    for entry in document:
        assert entry.tag == f"{{{NS}}}{child}"
        assert [e.tag for e in entry][:1] == [f"{{{NS}}}loc"]
        loc = entry.findtext(f"{{{NS}}}loc")
        lastmod = entry.findtext(f"{{{NS}}}lastmod")
        if lastmod is not None:
            datetime.strptime(lastmod, "%Y-%m-%dT%H:%M:%SZ")  # W3C datetime, in UTC
        assert loc not in found
        found[loc] = lastmod
    return found


@pytest.fixture
def site(make_post: Any, make_user: Any, author: Any) -> None:
    """Two public posts, a page, and all that a crawler must not find."""
    silent = make_user(Role.EDITOR, name="Silent Editor")  # has published nothing
    make_post("First post", tags=["Flask", "#embargo"], published_at=NOW - timedelta(days=2))
    make_post("Second post", tags=["SQL"], now=NOW + timedelta(hours=1))
    make_post("About", kind=PostKind.PAGE)
    make_post("Draft", tags=["Drafts only"], status=PostStatus.DRAFT, authors=[silent])
    make_post("Scheduled", tags=["Later"], status=PostStatus.SCHEDULED, published_at=FAR_FUTURE)


@pytest.mark.usefixtures("site")
def test_the_sitemap_lists_every_public_page_and_nothing_else(
    client: FlaskClient, author: Any
) -> None:
    urls = read_sitemap(client, "/sitemap.xml", "urlset")
    assert set(urls) == {
        f"{SITE}/",
        f"{SITE}/first-post/",
        f"{SITE}/second-post/",
        f"{SITE}/about/",
        f"{SITE}/tag/flask/",
        f"{SITE}/tag/sql/",
        f"{SITE}/author/{author.slug}/",
    }
    assert urls[f"{SITE}/first-post/"] == "2026-06-01T12:00:00Z"  # when it was last saved
    assert urls[f"{SITE}/second-post/"] == "2026-06-01T13:00:00Z"
    assert urls[f"{SITE}/tag/flask/"] == "2026-05-30T12:00:00Z"  # its newest post


@pytest.mark.usefixtures("site")
def test_past_the_limit_the_sitemap_is_an_index_of_parts(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = read_sitemap(client, "/sitemap.xml", "urlset")
    monkeypatch.setitem(app.config, "SITEMAP_MAX_URLS", 2)
    page_cache.invalidate(app)  # settings change at start-up, which starts the cache afresh

    index = read_sitemap(client, "/sitemap.xml", "sitemapindex")

    assert list(index) == [
        f"{SITE}/sitemap-posts-1.xml",
        f"{SITE}/sitemap-posts-2.xml",
        f"{SITE}/sitemap-tags-1.xml",
        f"{SITE}/sitemap-authors-1.xml",
    ]
    assert index[f"{SITE}/sitemap-posts-2.xml"] == "2026-06-01T13:00:00Z"
    parts = [read_sitemap(client, url.removeprefix(SITE), "urlset") for url in index]
    assert all(1 <= len(part) <= 2 for part in parts)
    assert {url: lastmod for part in parts for url, lastmod in part.items()} == whole
    assert client.get("/sitemap-posts-3.xml").status_code == 404
    assert client.get("/sitemap-posts-0.xml").status_code == 404
    assert client.get("/sitemap-drafts-1.xml", follow_redirects=True).status_code == 404


def test_a_new_site_has_a_sitemap_with_its_home_page(client: FlaskClient) -> None:
    assert read_sitemap(client, "/sitemap.xml", "urlset") == {f"{SITE}/": None}


def test_an_unchanged_sitemap_is_answered_with_304(client: FlaskClient, make_post: Any) -> None:
    make_post("Cached")
    first = client.get("/sitemap.xml")
    assert first.headers["Cache-Control"] == "public, max-age=3600"
    assert first.last_modified == NOW
    assert (
        client.get("/sitemap.xml", headers={"If-None-Match": first.headers["ETag"]}).status_code
        == 304
    )
    make_post("Fresh", now=NOW + timedelta(minutes=5))
    assert (
        client.get("/sitemap.xml", headers={"If-None-Match": first.headers["ETag"]}).status_code
        == 200
    )


def test_robots_txt_keeps_crawlers_out_of_the_admin_and_points_at_the_sitemap(
    client: FlaskClient,
) -> None:
    response = client.get("/robots.txt")
    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "User-agent: *"
    assert {line for line in lines if line.startswith("Disallow")} == {
        "Disallow: /admin/",
        "Disallow: /api/v1/admin/",
    }
    assert f"Sitemap: {SITE}/sitemap.xml" in lines
    assert (
        client.get("/robots.txt", headers={"If-None-Match": response.headers["ETag"]}).status_code
        == 304
    )
