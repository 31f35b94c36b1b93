"""Counting page views: readers count (cached pages too); bots, HEAD, staff and DNT do not."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, inspect, select, text

from broadsheet.config import ConfigError, load_settings
from broadsheet.extensions import db
from broadsheet.stats import rollup
from broadsheet.stats.counting import view_counter
from broadsheet.stats.models import DaySalt, DayViews, MinuteViews, VisitorMark
from broadsheet.stats.recording import Tally, ViewKey, record_views
from tests.conftest import base_config
from tests.page_cache_support import another_app
from tests.staff import PASSWORD, separate_client, sign_in

BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36"
)
OTHER_BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) Gecko/20100101 Firefox/133.0"
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.32.3",
    "",
]


def _read(app: Flask, path: str, *, agent: str = BROWSER, address: str = "203.0.113.7",
          method: str = "GET", **headers: str) -> Any:  # fmt: skip
    client = app.test_client(use_cookies=False)  # a client with a jar drops a Cookie header
    return client.open(
        path,
        method=method,
        headers={"User-Agent": agent, **headers},
        environ_base={"REMOTE_ADDR": address},
    )


def _written(app: Flask) -> list[MinuteViews]:
    view_counter(app).flush()
    return list(db.session.scalars(select(MinuteViews).order_by(MinuteViews.path)))


def _views(app: Flask) -> int:
    return sum(row.views for row in _written(app))


def test_a_reader_view_of_a_post_is_counted_with_its_post_referrer_and_source(
    app: Flask, make_post: Any
) -> None:
    post = make_post("Counting things")
    response = _read(
        app,
        f"/{post.slug}/?utm_source=Newsletter",
        Referer="https://www.news.example.org/some/long/path?with=query",
    )
    assert response.status_code == 200
    [row] = _written(app)
    assert (row.path, row.post_id, row.views, row.visitors) == (f"/{post.slug}/", post.id, 1, 1)
    assert (row.referrer, row.source) == ("news.example.org", "newsletter")


def test_a_page_answered_from_the_cache_is_counted(app: Flask, make_post: Any) -> None:
    post = make_post("Cached")
    first = _read(app, f"/{post.slug}/")
    second = _read(app, f"/{post.slug}/", address="198.51.100.9")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("MISS", "HIT")
    [row] = _written(app)
    assert (row.views, row.visitors) == (2, 2)


@pytest.mark.parametrize("agent", BOTS)
def test_bots_are_not_counted(app: Flask, make_post: Any, agent: str) -> None:
    post = make_post("Crawled")
    assert _read(app, f"/{post.slug}/", agent=agent).status_code == 200
    assert _views(app) == 0


def test_head_requests_are_not_counted(app: Flask, make_post: Any) -> None:
    post = make_post("Headed")
    _read(app, f"/{post.slug}/")  # stored, so the HEAD is a cache hit too
    _read(app, f"/{post.slug}/", method="HEAD")
    _read(app, f"/{post.slug}/", method="HEAD")
    assert _views(app) == 1


@pytest.mark.parametrize("header", ["DNT", "Sec-GPC"])
def test_readers_who_ask_not_to_be_tracked_are_not_counted(
    app: Flask, make_post: Any, header: str
) -> None:
    post = make_post("Private reader")
    _read(app, f"/{post.slug}/", **{header: "1"})
    assert _views(app) == 0


def test_what_is_not_a_reader_page_is_not_counted(app: Flask, make_post: Any) -> None:
    post = make_post("Feeds and misses")
    for path in ("/feed/", "/sitemap.xml", "/no-such-post/", "/api/v1/posts/", "/robots.txt"):
        _read(app, path)
    _read(app, "/")
    assert [(row.path, row.post_id) for row in _written(app)] == [("/", None)]
    assert post.id


def test_staff_reading_the_site_are_not_counted(app: Flask, make_post: Any, make_user: Any) -> None:
    post = make_post("Read by its author")
    staff = separate_client(app)
    make_user(email="editor@example.com", password=PASSWORD)
    sign_in(staff, "editor@example.com")
    assert staff.get(f"/{post.slug}/", headers={"User-Agent": BROWSER}).status_code == 200
    assert _views(app) == 0


def test_a_visitor_counts_once_a_day_across_pages(app: Flask, make_post: Any) -> None:
    one, two = make_post("One"), make_post("Two")
    _read(app, f"/{one.slug}/")
    view_counter(app).flush()  # another batch, as another process's would be
    _read(app, f"/{two.slug}/")
    _read(app, f"/{two.slug}/", agent=OTHER_BROWSER)
    rows = _written(app)
    assert sum(row.views for row in rows) == 3
    assert sum(row.visitors for row in rows) == 2


def test_the_database_holds_no_address_cookie_or_user_agent(app: Flask, make_post: Any) -> None:
    post = make_post("Private")
    address, agent = "203.0.113.199", BROWSER + " UniqueBrowser/9.9"
    _read(app, f"/{post.slug}/", agent=agent, address=address, Cookie="session=abcdef123456")
    assert _views(app) == 1
    needles = [address, "UniqueBrowser", "abcdef123456", "Chrome/131"]
    with db.engine.connect() as connection:
        tables = [t for t in inspect(connection).get_table_names() if t.startswith("stats_")]
        assert {"stats_minutes", "stats_days", "stats_salts", "stats_visitors"} <= set(tables)
        rollup.roll_up(db.session, now=datetime.now(UTC), retention_days=30)
        db.session.commit()
        for table in tables:
            for row in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                for needle in needles:
                    assert not any(needle in str(value) for value in row), (table, row)


def _minute(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_the_roll_up_sums_days_and_forgets_finished_days_salts(app: Flask) -> None:
    today = date(2026, 6, 10)
    yesterday = today - timedelta(days=1)
    batch = {
        ViewKey(_minute(yesterday, 9), "/a/", "example.org", ""): Tally(3, {b"x", b"y"}),
        ViewKey(_minute(yesterday, 15), "/a/", "example.org", ""): Tally(2, {b"x", b"z"}),
        ViewKey(_minute(today, 8), "/a/", "", "mastodon"): Tally(1, {b"x"}),
    }
    record_views(db.session, batch)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(DaySalt)) == 2
    done = rollup.roll_up(db.session, now=_minute(today, 10), retention_days=30)
    db.session.commit()
    assert done.days == [yesterday, today]  # from the first minute row, none rolled up yet
    rows = db.session.execute(
        select(
            DayViews.day, DayViews.referrer, DayViews.source, DayViews.views, DayViews.visitors
        ).order_by(DayViews.day)
    ).all()
    assert [tuple(row) for row in rows] == [
        (yesterday, "example.org", "", 5, 3),
        (today, "", "mastodon", 1, 1),
    ]
    # Yesterday's salt and marks are gone: nothing links a mark to a visitor any more.
    assert db.session.scalars(select(DaySalt.day)).all() == [today]
    assert db.session.scalars(select(VisitorMark.day).distinct()).all() == [today]
    # Run again as more views arrive today: today's row is rewritten, not added to.
    record_views(db.session, {ViewKey(_minute(today, 9), "/a/", "", "mastodon"): Tally(4, set())})
    rollup.roll_up(db.session, now=_minute(today, 11), retention_days=30)
    db.session.commit()
    assert db.session.scalar(select(DayViews.views).where(DayViews.day == today)) == 5


def test_minute_rows_are_kept_for_the_retention_days_only(app: Flask) -> None:
    today = date(2026, 6, 10)
    old, kept = today - timedelta(days=8), today - timedelta(days=6)
    record_views(db.session, {
        ViewKey(_minute(old), "/old/", "", ""): Tally(1, set()),
        ViewKey(_minute(kept), "/kept/", "", ""): Tally(1, set()),
    })  # fmt: skip
    rollup.roll_up(db.session, now=_minute(old, 23), retention_days=7)  # old's day rolled up
    rollup.roll_up(db.session, now=_minute(today), retention_days=7)
    db.session.commit()
    assert db.session.scalars(select(MinuteViews.path)).all() == ["/kept/"]
    # The daily rows stay after their minutes are gone.
    assert sorted(db.session.scalars(select(DayViews.path))) == ["/kept/", "/old/"]


@pytest.mark.parametrize("value", ["1", "0", "many", "4000"])
def test_a_retention_outside_two_days_to_ten_years_stops_start_up(
    value: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="STATS_RETENTION_DAYS"):
        load_settings({"STATS_RETENTION_DAYS": value}, tmp_path)


def test_without_a_page_cache_views_are_still_counted_but_not_staff_reads(
    app: Flask, database_url: str, tmp_path: Path, make_post: Any, make_user: Any
) -> None:
    post = make_post("Uncached site")
    make_user(email="editor@example.com", password=PASSWORD)
    with another_app(app, base_config(tmp_path, database_url, PAGE_CACHE_URL="off")) as uncached:
        staff = separate_client(uncached)
        sign_in(staff, "editor@example.com")
        name = uncached.config["SESSION_COOKIE_NAME"]
        cookie = staff.get_cookie(name)
        assert cookie is not None
        _read(uncached, f"/{post.slug}/")
        _read(uncached, f"/{post.slug}/", Cookie=f"{name}={cookie.value}")
        _read(uncached, "/feed/")
        view_counter(uncached).flush()
    assert [(row.path, row.views) for row in _written(app)] == [(f"/{post.slug}/", 1)]
