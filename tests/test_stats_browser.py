"""Chromium reads the stats dashboard: each chart shows, under the site's CSP, beside its table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from broadsheet.accounts.models import Role
from broadsheet.extensions import db, utcnow
from broadsheet.stats import rollup
from broadsheet.stats.recording import Tally, ViewKey, record_views
from tests.browser import ARTIFACTS, chromium, live_site
from tests.staff import PASSWORD

# An image's natural width once it has loaded (0 if it failed): waits for the load or error.
LOADED_WIDTH = """img => img.complete ? img.naturalWidth : new Promise(done => {
  img.addEventListener("load", () => done(img.naturalWidth));
  img.addEventListener("error", () => done(0));
})"""

pytestmark = pytest.mark.browser


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _complaints(page: Page) -> list[str]:
    """What the page's console says went wrong (a CSP refusal, a failed load)."""
    found: list[str] = []

    def listen(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            found.append(message.text)

    page.on("console", listen)
    return found


def test_the_dashboards_charts_render_beside_their_data_tables(
    app: Any, database_url: str, tmp_path: Path, browser: Browser, make_user: Any, make_post: Any
) -> None:
    make_user(Role.EDITOR, email="eda@example.com", name="Eda Editor", password=PASSWORD)
    post = make_post("Read in a browser")
    today = utcnow().replace(second=0, microsecond=0)
    for days_ago, views in ((0, 12), (2, 30), (5, 7)):
        key = ViewKey(
            today - timedelta(days=days_ago), f"/{post.slug}/", "example.org", "", post.slug
        )
        record_views(
            db.session, {key: Tally(views, {f"{days_ago}-{n}".encode() for n in range(3)})}
        )
    rollup.roll_up(db.session, now=utcnow(), retention_days=30)
    db.session.commit()
    post_id = post.id
    db.session.remove()
    with live_site(database_url, tmp_path) as (url, _served):
        page = browser.new_page()
        complaints = _complaints(page)
        page.goto(f"{url}/admin/login")
        page.get_by_label("Email").fill("eda@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.get_by_role("link", name="Stats").click()
        page.get_by_role("link", name="Last 7 days").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Stats")

        for title, rows in (
            ("Views and unique visitors per day, last 7 days", 7),
            ("Subscribers per day, last 7 days", 7),
        ):
            chart = page.get_by_role(
                "img", name=f"Chart: {title}. The same figures are in the table beside it."
            )
            expect(chart).to_be_visible()
            # Loaded and drawn: a refused or broken SVG has no natural size.  Visible comes
            # before loaded, so this waits for the image's load or error.
            assert chart.evaluate(LOADED_WIDTH) > 0
            table = page.get_by_role("table", name=title)
            expect(table).to_be_visible()
            expect(table.locator("tbody tr")).to_have_count(rows)
        daily = page.get_by_role("table", name="Views and unique visitors per day, last 7 days")
        expect(daily.locator("tbody tr").last).to_contain_text("12")
        expect(page.get_by_role("table", name="Top posts, last 7 days")).to_contain_text(
            "Read in a browser"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "stats-dashboard.png"), full_page=True)

        # The chart on its own: its inline styles apply under the policy it is served with.
        svg = page.locator("img[src*='daily.svg']").get_attribute("src")
        page.goto(f"{url}{svg}")
        title = page.locator(".title").first
        expect(title).to_have_text("Views and unique visitors per day, last 7 days")
        assert "system-ui" in title.evaluate("node => getComputedStyle(node).fontFamily")
        assert not [c for c in complaints if "Content Security Policy" in c], complaints

        # Without JavaScript the page reads the same: charts are images, tables are HTML.
        context = browser.new_context(java_script_enabled=False)
        quiet = context.new_page()
        quiet.goto(f"{url}/admin/login")
        quiet.get_by_label("Email").fill("eda@example.com")
        quiet.get_by_label("Password").fill(PASSWORD)
        quiet.get_by_role("button", name="Sign in").click()
        quiet.goto(f"{url}/admin/stats/posts/{post_id}/?days=7")
        expect(quiet.get_by_role("table", name="Top referrers, last 7 days")).to_contain_text(
            "example.org"
        )
        chart = quiet.get_by_role("img").first
        assert chart.evaluate("img => img.complete && img.naturalWidth > 0")
        context.close()
