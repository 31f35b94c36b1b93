"""Feeds, as a feed reader sees them: RSS 2.0, Atom and JSON Feed 1.1 for the site,
each tag and each author, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient

from broadsheet.accounts.models import Role
from broadsheet.content.models import PostKind, PostStatus
from broadsheet.site.feeds import FEED_SIZE
from tests.conftest import NOW
from tests.feeds import FEED_TYPES, read_feed

SITE = "https://blog.example.com"
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
FORMATS = ["rss", "atom", "json"]
SITE_FEEDS = {"rss": "/feed/", "atom": "/feed/atom/", "json": "/feed.json"}


def tag_feed(slug: str, fmt: str) -> str:
    return f"/tag/{slug}{SITE_FEEDS[fmt]}"


def author_feed(slug: str, fmt: str) -> str:
    return f"/author/{slug}{SITE_FEEDS[fmt]}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_site_feed_carries_the_latest_posts_in_full_with_absolute_links(
    client: FlaskClient, make_post: Any, author: Any, fmt: str
) -> None:
    make_post("Older news", published_at=NOW - timedelta(days=2), tags=["Flask"])
    make_post(
        "Hello, readers",
        published_at=NOW - timedelta(days=1),
        tags=["Flask", "#staff-only", "Python"],
        markdown=(
            "See [the about page](/about/) and [a sibling](../older-news/).\n\n"
            "![A chart](/media/chart.png)\n\n"
            "Footnoted.[^1] Mail [us](mailto:hi@example.com).\n\n"
            "[^1]: A note.\n"
        ),
    )

    feed = read_feed(client, SITE_FEEDS[fmt], fmt)

    assert feed.title == "Broadsheet"
    assert feed.link == f"{SITE}/"
    assert feed.titles == ["Hello, readers", "Older news"]
    newest = feed.entries[0]
    assert newest.link == f"{SITE}/hello-readers/"
    assert newest.authors == ["Maya Okafor"]
    assert newest.tags == ["Flask", "Python"]
    assert f'href="{SITE}/about/"' in newest.content
    assert f'href="{SITE}/older-news/"' in newest.content
    assert f'src="{SITE}/media/chart.png"' in newest.content
    assert f'href="{SITE}/hello-readers/#fn1"' in newest.content
    assert 'href="mailto:hi@example.com"' in newest.content
    assert "A note." in newest.content  # the whole post, not an excerpt
    assert newest.id != feed.entries[1].id
    assert "staff-only" not in feed.body
    assert author.email not in feed.body  # staff addresses stay private


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_that_only_looks_like_a_link_is_left_alone(
    client: FlaskClient, make_post: Any, fmt: str
) -> None:
    make_post("Markup lesson", markdown='Write `<a href="/x">` to link.\n\n    src="/y"\n')
    content = read_feed(client, SITE_FEEDS[fmt], fmt).entries[0].content
    assert '&lt;a href="/x"&gt;' in content
    assert 'src="/y"' in content
    assert SITE not in content


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("channel", ["site", "tag", "author"])
def test_drafts_scheduled_posts_pages_and_internal_tags_never_reach_a_feed(
    client: FlaskClient, make_post: Any, author: Any, channel: str, fmt: str
) -> None:
    make_post("Public post", tags=["Flask", "#embargo"])
    make_post("A draft", tags=["Flask"], status=PostStatus.DRAFT)
    make_post(
        "Scheduled post", tags=["Flask"], status=PostStatus.SCHEDULED, published_at=FAR_FUTURE
    )
    make_post("About us", tags=["Flask"], kind=PostKind.PAGE)
    url = {
        "site": SITE_FEEDS[fmt],
        "tag": tag_feed("flask", fmt),
        "author": author_feed(author.slug, fmt),
    }[channel]

    feed = read_feed(client, url, fmt)

    assert feed.titles == ["Public post"]
    assert feed.entries[0].tags == ["Flask"]
    for hidden in ("A draft", "Scheduled post", "About us", "embargo"):
        assert hidden not in feed.body


@pytest.mark.parametrize("fmt", FORMATS)
def test_tag_and_author_feeds_hold_only_their_own_posts(
    client: FlaskClient, make_post: Any, make_user: Any, author: Any, fmt: str
) -> None:
    other = make_user(Role.AUTHOR, name="Tomás Ruiz")
    make_post("Flask by Maya", tags=["Flask"], published_at=NOW - timedelta(hours=3))
    make_post("SQL by Maya", tags=["SQL"], published_at=NOW - timedelta(hours=2))
    make_post(
        "Flask by both",
        tags=["Flask", "SQL"],
        authors=[other, author],
        published_at=NOW - timedelta(hours=1),
    )
    make_post("SQL by Tomás", tags=["SQL"], authors=[other])

    flask = read_feed(client, tag_feed("flask", fmt), fmt)
    tomas = read_feed(client, author_feed(other.slug, fmt), fmt)

    assert flask.title == "Flask — Broadsheet"
    assert flask.link == f"{SITE}/tag/flask/"
    assert flask.titles == ["Flask by both", "Flask by Maya"]
    assert tomas.title == "Tomás Ruiz — Broadsheet"
    assert tomas.link == f"{SITE}/author/{other.slug}/"
    assert tomas.titles == ["SQL by Tomás", "Flask by both"]
    assert tomas.entries[1].authors == ["Tomás Ruiz", "Maya Okafor"]


def test_a_feed_holds_the_twenty_latest_posts(client: FlaskClient, make_post: Any) -> None:
    for number in range(FEED_SIZE + 1):
        make_post(f"Post {number}", published_at=NOW - timedelta(hours=100 - number))
    feed = read_feed(client, "/feed/", "rss")
    assert len(feed.entries) == FEED_SIZE == 20
    assert feed.titles[0] == f"Post {FEED_SIZE}"
    assert "Post 0" not in feed.titles


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_empty_site_still_has_a_valid_feed(client: FlaskClient, fmt: str) -> None:
    # /feed/ is the feed, never a lookup of a post called "feed".
    assert read_feed(client, SITE_FEEDS[fmt], fmt).entries == []


@pytest.mark.parametrize(
    ("story", "url"),
    [
        ("unknown tag", "/tag/no-such-tag/feed/"),
        ("internal tag", "/tag/hash-embargo/feed/atom/"),
        ("tag used only by drafts", "/tag/drafts-only/feed.json"),
        ("unknown author", "/author/nobody/feed/"),
        ("staff who published nothing", "/author/staff-member-1/feed/atom/"),
    ],
)
def test_feeds_of_things_readers_cannot_see_are_not_found(
    client: FlaskClient, make_post: Any, make_user: Any, story: str, url: str
) -> None:
    make_user(Role.EDITOR, name="Staff Member 1")
    make_post("Public post", tags=["#embargo"])
    make_post("Draft", tags=["Drafts only"], status=PostStatus.DRAFT)
    assert client.get(url).status_code == 404, story


# --- HTTP caching ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_unchanged_feed_is_answered_with_304(
    client: FlaskClient, make_post: Any, fmt: str
) -> None:
    make_post("Cached", published_at=NOW - timedelta(hours=1))
    first = client.get(SITE_FEEDS[fmt])
    assert first.status_code == 200
    assert first.content_type == FEED_TYPES[fmt]
    assert first.headers["Cache-Control"] == "public, max-age=300"
    assert first.last_modified == NOW
    etag = first.headers["ETag"]

    by_etag = client.get(SITE_FEEDS[fmt], headers={"If-None-Match": etag})
    by_date = client.get(
        SITE_FEEDS[fmt], headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    again = client.get(SITE_FEEDS[fmt])

    assert by_etag.status_code == 304
    assert by_etag.data == b""
    assert by_date.status_code == 304
    assert again.headers["ETag"] == etag  # built from the content, not the clock


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_new_post_changes_the_feed_for_readers_who_poll(
    client: FlaskClient, make_post: Any, fmt: str
) -> None:
    make_post("First", published_at=NOW - timedelta(days=1))
    before = client.get(SITE_FEEDS[fmt])
    make_post("Second", now=NOW + timedelta(hours=1))

    after = client.get(SITE_FEEDS[fmt], headers={"If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert after.last_modified > before.last_modified
    assert "Second" in after.get_data(as_text=True)


@pytest.mark.parametrize(
    "url", ["/feed/", "/tag/flask/feed/atom/", "/author/maya-okafor/feed.json"]
)
def test_a_feed_costs_the_same_queries_however_many_posts_it_holds(
    client: FlaskClient, make_post: Any, count_queries: Any, url: str
) -> None:
    make_post("Only post", tags=["Flask", "SQL"])
    count_queries.statements.clear()
    client.get(url)
    with_one = len(count_queries)
    for number in range(5):
        make_post(f"Post {number}", tags=["Flask", f"Topic {number}"])
    count_queries.statements.clear()

    assert client.get(url).status_code == 200
    assert len(count_queries) == with_one


class _AlternateLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "link" and found.get("rel") == "alternate":
            self.found.append((found["type"] or "", found["href"] or ""))


@pytest.mark.parametrize(
    ("page", "own_feed"),
    [("/", "/feed/"), ("/tag/flask/", "/tag/flask/feed/"), ("/author/maya-okafor/", None)],
)
def test_every_feed_a_page_advertises_is_one_a_reader_can_follow(
    client: FlaskClient, make_post: Any, page: str, own_feed: str | None
) -> None:
    make_post("Advertised", tags=["Flask"])
    finder = _AlternateLinks()
    finder.feed(client.get(page).get_data(as_text=True))
    formats = {mimetype.split(";")[0]: fmt for fmt, mimetype in FEED_TYPES.items()}

    assert finder.found, page
    for mimetype, href in finder.found:
        assert href.startswith(f"{SITE}/")
        feed = read_feed(client, href.removeprefix(SITE), formats[mimetype])
        assert feed.titles == ["Advertised"]
    hrefs = {href for _, href in finder.found}
    assert f"{SITE}{own_feed or '/author/maya-okafor/feed/'}" in hrefs


@pytest.mark.parametrize(("url", "fmt"), [("/feed/", "rss"), ("/feed.json", "json")])
def test_feeds_carry_the_name_staff_gave_the_site(
    client: FlaskClient, make_post: Any, url: str, fmt: str
) -> None:
    from broadsheet.accounts.permissions import OPERATOR
    from broadsheet.extensions import db
    from broadsheet.settings.services import update_site_settings

    make_post("Renamed site")
    update_site_settings(
        db.session, actor=OPERATOR, now=NOW, title="The Renamed Gazette",
        description="Still written slowly.", timezone="UTC", posts_per_page=10,
    )  # fmt: skip
    db.session.commit()
    feed = read_feed(client, url, fmt)
    assert feed.title == "The Renamed Gazette"
