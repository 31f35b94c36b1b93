# Over 400 lines: one test per public page type, sharing the page-reading helpers at the top.
"""What a reader sees on the public pages, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import lxml.html
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from broadsheet.accounts.models import Role
from broadsheet.content.models import PostKind, PostStatus, Tag
from broadsheet.extensions import db
from tests.conftest import NOW

SITE = "https://blog.example.com"
FAR_FUTURE = NOW + timedelta(days=3650)


class Page(HTMLParser):
    """The parts of a page these tests read: head tags, links, headings, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, list[str]] = {}
        self.links: list[dict[str, str]] = []
        self.anchors: list[tuple[str, str]] = []
        self.scripts: list[tuple[str, str]] = []
        self.title = ""
        self.h1 = ""
        self.text = ""
        self._open: list[str] = []
        self._anchor: str | None = None
        self._anchor_text = ""
        self._script_type = ""
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "meta" and ("property" in found or "name" in found):
            key = found.get("property") or found["name"]
            self.meta.setdefault(key, []).append(found.get("content", ""))
        elif tag == "link":
            self.links.append(found)
        elif tag == "a":
            self._anchor, self._anchor_text = found.get("href", ""), ""
        elif tag == "script":
            self._script_type = found.get("type", "")
        if tag not in ("meta", "link", "br", "img", "hr", "input"):
            self._open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._anchor is not None:
            self.anchors.append((" ".join(self._anchor_text.split()), self._anchor))
            self._anchor = None
        if self._open and self._open[-1] == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        where = self._open[-1] if self._open else ""
        if where == "title":
            self.title += data
        elif where == "script":
            self.scripts.append((self._script_type, data))
            return
        if "h1" in self._open:
            self.h1 += data
        if self._anchor is not None:
            self._anchor_text += data
        if "body" in self._open:
            self.text += data

    def first(self, key: str) -> str:
        return self.meta[key][0]

    def link(self, rel: str) -> str | None:
        hrefs = [link["href"] for link in self.links if link.get("rel") == rel]
        return hrefs[0] if hrefs else None

    def href(self, text: str) -> str:
        return next(href for label, href in self.anchors if label == text)

    def has_link(self, text: str) -> bool:
        return any(label == text for label, _ in self.anchors)

    @property
    def words(self) -> str:
        return " ".join(self.text.split())

    @property
    def heading(self) -> str:
        return " ".join(self.h1.split())

    def structured_data(self) -> dict[str, Any]:
        (body,) = [data for kind, data in self.scripts if kind == "application/ld+json"]
        loaded: dict[str, Any] = json.loads(body)
        return loaded


def read(client: FlaskClient, url: str, status: int = 200) -> Page:
    response = client.get(url)
    assert response.status_code == status, url
    return Page(response.get_data(as_text=True))


@pytest.fixture
def other_author(make_user: Any) -> Any:
    return make_user(Role.AUTHOR, name="Tomás Ferreira", email="tomas@example.com", bio="Backend.")


# The pages ----------------------------------------------------------------------------------


def test_home_lists_public_posts_newest_first(client: FlaskClient, make_post: Any) -> None:
    make_post("Older news", published_at=NOW - timedelta(days=2))
    make_post("Newest news", published_at=NOW - timedelta(days=1), excerpt="The very latest.")
    page = read(client, "/")
    assert page.words.index("Newest news") < page.words.index("Older news")
    assert "The very latest." in page.words
    assert page.href("Newest news") == "/newest-news/"
    assert page.title == "Broadsheet — Notes on software, written slowly."


def test_a_site_with_nothing_published_says_so(client: FlaskClient) -> None:
    page = read(client, "/")
    assert "Nothing has been published yet" in page.words


def test_post_page_shows_everything_a_reader_needs(
    client: FlaskClient, make_post: Any, author: Any, other_author: Any
) -> None:
    older = make_post("Before", published_at=NOW - timedelta(days=3))
    make_post(
        "Fast archives",
        markdown="Intro.\n\n## Details\n\n```python\nprint('hi')\n```\n",
        tags=["Flask", "#staff-only", "PostgreSQL"],
        authors=[author, other_author],
        published_at=NOW - timedelta(days=2),
    )
    newer = make_post("After", published_at=NOW - timedelta(days=1))
    response = client.get("/fast-archives/")
    html = response.get_data(as_text=True)
    page = Page(html)
    assert page.heading == "Fast archives"
    assert page.href("Maya Okafor") == "/author/maya-okafor/"
    assert page.href("Tomás Ferreira") == "/author/tomas-ferreira/"
    assert '<time datetime="2026-05-30T12:00:00+00:00">30 May 2026</time>' in html
    assert page.href("Flask") == "/tag/flask/"
    assert page.href("PostgreSQL") == "/tag/postgresql/"
    assert "staff-only" not in html
    assert '<span class="nb">print</span>' in html
    assert 'id="details"' in html
    assert page.href(f"Newer {newer.title}") == f"/{newer.slug}/"
    assert page.href(f"Older {older.title}") == f"/{older.slug}/"
    assert "Backend." in page.words  # the co-author's bio
    assert "1 min read" in page.words


def test_the_newest_and_oldest_posts_link_one_way_only(client: FlaskClient, make_post: Any) -> None:
    make_post("Only post")
    page = read(client, "/only-post/")
    assert not any(label.startswith(("Newer", "Older")) for label, _ in page.anchors)


def test_tag_archive_names_the_tag_and_lists_its_posts_newest_first(
    client: FlaskClient, make_post: Any
) -> None:
    make_post("First flask post", tags=["Flask"], published_at=NOW - timedelta(days=2))
    make_post("Second flask post", tags=["Python", "Flask"], published_at=NOW - timedelta(days=1))
    make_post("Not about flask", tags=["Python"])
    page = read(client, "/tag/flask/")
    assert page.heading == "Tag Archives: Flask"
    assert page.title == "Tag Archives: Flask — Broadsheet"
    assert "2 posts" in page.words
    assert page.words.index("Second flask post") < page.words.index("First flask post")
    assert "Not about flask" not in page.words


def test_tag_archive_shows_the_tags_description(client: FlaskClient, make_post: Any) -> None:
    make_post("Tagged", tags=["Flask"])
    tag = db.session.scalars(select(Tag).where(Tag.slug == "flask")).one()
    tag.description = "A micro framework, and everything around it."
    db.session.commit()
    page = read(client, "/tag/flask/")
    assert "A micro framework, and everything around it." in page.words
    assert page.first("description") == "A micro framework, and everything around it."


def test_author_archive_shows_bio_and_posts(
    client: FlaskClient, make_post: Any, other_author: Any
) -> None:
    make_post("Tomás writes", authors=[other_author])
    make_post("Maya writes")
    page = read(client, "/author/tomas-ferreira/")
    assert page.heading == "Author: Tomás Ferreira"
    assert "Backend." in page.words
    assert "Tomás writes" in page.words
    assert "Maya writes" not in page.words
    assert "1 post" in page.words


def test_date_archives_hold_their_year_and_month(client: FlaskClient, make_post: Any) -> None:
    make_post("May post", published_at=NOW - timedelta(days=5))  # 27 May 2026
    make_post("June post", published_at=NOW)
    make_post("Last year", published_at=NOW - timedelta(days=365))
    year = read(client, "/2026/")
    assert year.heading == "Archives: 2026"
    assert "May post" in year.words
    assert "June post" in year.words
    assert "Last year" not in year.words
    month = read(client, "/2026/05/")
    assert month.heading == "Archives: May 2026"
    assert "May post" in month.words
    assert "June post" not in month.words
    read(client, "/2024/", 404)  # nothing then
    read(client, "/2026/13/", 404)
    read(client, "/2026/5/", 404)  # months have two digits


def test_a_post_whose_slug_is_a_year_is_still_reachable(
    client: FlaskClient, make_post: Any
) -> None:
    make_post("2024")
    assert read(client, "/2024/").heading == "2024"


def test_standalone_pages_are_in_the_menu_and_nowhere_else(
    client: FlaskClient, make_post: Any
) -> None:
    make_post("About", kind=PostKind.PAGE, markdown="Who we are.", tags=["Flask"])
    make_post("A real post", tags=["Flask"])
    about = read(client, "/about/")
    assert about.heading == "About"
    assert "Who we are." in about.words
    assert about.structured_data()["@type"] == "WebPage"
    home = read(client, "/")
    assert home.href("About") == "/about/"  # the menu
    for url in ("/", "/tag/flask/", "/author/maya-okafor/", "/2026/", "/2026/06/"):
        page = read(client, url)
        assert "A real post" in page.words, url
        assert [label for label, _ in page.anchors].count("About") == 1, url  # the menu only
        assert "Who we are." not in page.words, url


# What readers never see -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"status": PostStatus.DRAFT},
        {"status": PostStatus.SCHEDULED, "published_at": FAR_FUTURE},
    ],
    ids=["draft", "scheduled"],
)
def test_unpublished_posts_are_invisible_everywhere(
    client: FlaskClient, make_post: Any, make_user: Any, fields: dict[str, Any]
) -> None:
    ghost = make_user(Role.AUTHOR, name="Ghost Writer", email="ghost@example.com")
    make_post("Public post", tags=["Flask"], published_at=NOW - timedelta(days=1))
    make_post("Secret plans", tags=["Flask", "Acquisition"], authors=[ghost], **fields)
    for url in ("/", "/tag/flask/", "/author/maya-okafor/", "/2026/", "/2026/05/"):
        page = read(client, url)
        assert "Secret plans" not in page.words, url
        assert "Acquisition" not in page.words, url
    assert "1 post" in read(client, "/tag/flask/").words
    read(client, "/secret-plans/", 404)
    read(client, "/tag/acquisition/", 404)  # a tag on drafts only has no page
    read(client, "/author/ghost-writer/", 404)  # nor a writer with nothing published


def test_internal_tags_are_invisible_everywhere(client: FlaskClient, make_post: Any) -> None:
    make_post("Tagged post", tags=["#newsletter-pick", "Flask"])
    read(client, "/tag/hash-newsletter-pick/", 404)
    for url in ("/", "/tagged-post/", "/tag/flask/", "/author/maya-okafor/", "/2026/"):
        response = client.get(url)
        assert b"newsletter-pick" not in response.data, url
    assert read(client, "/tagged-post/").structured_data()["keywords"] == ["Flask"]


def test_a_post_with_only_internal_tags_has_no_kicker(client: FlaskClient, make_post: Any) -> None:
    make_post("Quiet post", tags=["#internal"])
    page = read(client, "/quiet-post/")
    assert "internal" not in page.words
    assert "articleSection" not in page.structured_data()


# Pagination -----------------------------------------------------------------------------------


@pytest.fixture
def twenty_five_posts(make_post: Any) -> None:
    for number in range(25):
        make_post(
            f"Post number {number}",
            tags=["Flask"],
            published_at=NOW - timedelta(days=40) + timedelta(hours=number),
        )


@pytest.mark.parametrize(
    "base", ["/", "/tag/flask/", "/author/maya-okafor/", "/2026/", "/2026/04/"]
)
@pytest.mark.usefixtures("twenty_five_posts")
def test_pagination_edges(client: FlaskClient, base: str) -> None:
    first = read(client, base)
    assert "Page 1 of 3" in first.words
    assert first.href("Older posts →") == f"{base}page/2/"
    assert not first.has_link("← Newer posts")
    assert first.link("next") == f"{SITE}{base}page/2/"
    assert first.link("prev") is None

    middle = read(client, f"{base}page/2/")
    assert middle.href("← Newer posts") == base  # page 1 is the archive's own URL
    assert middle.href("Older posts →") == f"{base}page/3/"
    assert middle.link("canonical") == f"{SITE}{base}page/2/"
    assert "Page 2 of 3" in middle.title

    last = read(client, f"{base}page/3/")
    assert len([a for a in last.anchors if a[0].startswith("Post number")]) == 5
    assert not last.has_link("Older posts →")

    redirect = client.get(f"{base}page/1/")
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == base
    for bad in ("page/0/", "page/4/", "page/99999999/", "page/two/", "page/-1/", "page/2.5/"):
        response = client.get(f"{base}{bad}")
        assert response.status_code == 404, bad
        assert "Page not found" in Page(response.get_data(as_text=True)).words


def test_pages_follow_the_page_size_setting(client: FlaskClient, make_post: Any, app: Any) -> None:
    for number in range(4):
        make_post(f"Short {number}")
    app.config["POSTS_PER_PAGE"] = 3
    try:
        assert "Page 1 of 2" in read(client, "/").words
    finally:
        app.config["POSTS_PER_PAGE"] = 10


# The head -------------------------------------------------------------------------------------


def test_post_head_describes_it_to_search_engines_and_link_previews(
    client: FlaskClient, make_post: Any
) -> None:
    make_post(
        "Fast archives",
        excerpt="How one index serves every archive page.",
        tags=["Flask", "#internal", "SQL"],
    )
    page = read(client, "/fast-archives/")
    url = f"{SITE}/fast-archives/"
    assert page.title == "Fast archives — Broadsheet"
    assert page.first("description") == "How one index serves every archive page."
    assert page.link("canonical") == url
    assert page.first("og:type") == "article"
    assert page.first("og:title") == "Fast archives"
    assert page.first("og:url") == url
    assert page.first("og:site_name") == "Broadsheet"
    assert page.first("og:description") == "How one index serves every archive page."
    assert page.first("article:published_time") == "2026-06-01T12:00:00+00:00"
    assert page.meta["article:tag"] == ["Flask", "SQL"]
    assert page.first("twitter:card") == "summary"
    assert page.first("twitter:title") == "Fast archives"
    data = page.structured_data()
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "BlogPosting"
    assert data["headline"] == "Fast archives"
    assert data["url"] == url
    assert data["datePublished"] == "2026-06-01T12:00:00+00:00"
    assert data["author"] == [
        {"@type": "Person", "name": "Maya Okafor", "url": f"{SITE}/author/maya-okafor/"}
    ]
    assert data["publisher"] == {"@type": "Organization", "name": "Broadsheet", "url": f"{SITE}/"}
    assert data["keywords"] == ["Flask", "SQL"]
    assert data["articleSection"] == "Flask"


def test_archive_heads_describe_a_collection(client: FlaskClient, make_post: Any) -> None:
    make_post("One", tags=["Flask"])
    make_post("Two", tags=["Flask"])
    page = read(client, "/tag/flask/")
    assert page.link("canonical") == f"{SITE}/tag/flask/"
    assert page.first("og:type") == "website"
    assert page.first("og:title") == "Tag Archives: Flask"
    data = page.structured_data()
    assert data["@type"] == "CollectionPage"
    assert data["name"] == "Tag Archives: Flask"
    assert data["mainEntity"]["numberOfItems"] == 2
    assert [item["url"] for item in data["mainEntity"]["itemListElement"]] == [
        f"{SITE}/two/",
        f"{SITE}/one/",
    ]
    for url in ("/", "/author/maya-okafor/", "/2026/", "/2026/06/"):
        assert read(client, url).structured_data()["@type"] == "CollectionPage", url


def test_hostile_titles_cannot_break_out_of_the_head(client: FlaskClient, make_post: Any) -> None:
    title = '</script><script>alert(1)</script>"><b>'
    make_post(title, slug="hostile", tags=["<img src=x onerror=alert(1)>"])
    response = client.get("/hostile/")
    html = response.get_data(as_text=True)
    page = Page(html)
    assert [kind for kind, _ in page.scripts] == ["application/ld+json"]
    assert page.structured_data()["headline"] == title
    assert page.first("og:title") == title
    assert "<script>alert" not in html
    assert "<img src=x" not in html


def test_pages_advertise_their_feeds(client: FlaskClient, make_post: Any) -> None:
    """Whatever feeds exist are advertised in the head, and each link answers."""
    make_post("One", tags=["Flask"])
    for url in ("/", "/one/", "/tag/flask/", "/author/maya-okafor/"):
        page = read(client, url)
        feeds = [link for link in page.links if link.get("rel") == "alternate"]
        for feed in feeds:
            assert feed["type"] in (
                "application/rss+xml",
                "application/atom+xml",
                "application/feed+json",
            )
            assert feed["href"].startswith(SITE)
            assert client.get(feed["href"].removeprefix(SITE)).status_code == 200, feed


def test_every_page_offers_the_newsletter(client: FlaskClient, make_post: Any) -> None:
    post = make_post("With a sign-up")
    for path in ("/", f"/{post.slug}/"):
        page = lxml.html.fromstring(client.get(path).get_data(as_text=True))
        forms = page.xpath("//aside[@aria-label='Newsletter']//form[@method='post']")
        assert len(forms) == 1, path
        assert forms[0].get("action") == "/subscribe/"
        assert forms[0].xpath(".//input[@name='email' and @type='email']")


def test_a_byline_never_shows_a_role_or_nothing(
    client: FlaskClient, make_post: Any, make_user: Any
) -> None:
    owner = make_user(Role.OWNER, email="owner@example.com", name=None)
    unnamed = make_user(Role.AUTHOR, email="ann.lee@example.com", name="Ann")
    unnamed.name = ""  # an account from before a name was asked for
    db.session.commit()
    make_post("By the owner", authors=[owner])
    make_post("By nobody named", authors=[unnamed])
    owners = client.get("/by-the-owner/").get_data(as_text=True)
    assert "By <a" in owners
    assert ">owner</a>" not in owners
    assert "By owner" not in owners
    assert Page(client.get("/by-nobody-named/").get_data(as_text=True)).href("ann.lee") == (
        f"/author/{unnamed.slug}/"
    )
    api = client.get("/api/v1/posts/slug/by-the-owner/").get_json()["post"]
    assert "owner" not in [author["name"].lower() for author in api["authors"]]
