"""A real Chromium drives the admin: write, preview, schedule, publish; and a contributor who can't.

The app is served by a real HTTP server on 127.0.0.1 (plain http, so the
site URL says http and the session cookie is not marked Secure) against
the test database.  The scheduler is the same service the beat task runs,
called directly once the scheduled moment has passed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select

from broadsheet.accounts.models import Role
from broadsheet.content.models import Post
from broadsheet.content.services import publish_due_posts
from broadsheet.extensions import db, utcnow
from tests.browser import ARTIFACTS, chromium, live_site
from tests.staff import PASSWORD

pytestmark = pytest.mark.browser


@dataclass
class LiveAdmin:
    url: str
    app: Flask


@pytest.fixture
def live(app: Flask, database_url: str, tmp_path: Path) -> Iterator[LiveAdmin]:
    """A server of its own on a free port; ``app`` (same database) empties the tables after."""
    with live_site(database_url, tmp_path) as (url, served_app):
        yield LiveAdmin(url, served_app)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def sign_in(page: Page, live: LiveAdmin, email: str) -> None:
    page.goto(f"{live.url}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.url.endswith("/admin/")


def test_an_author_writes_previews_and_schedules_a_post_that_the_scheduler_publishes(
    live: LiveAdmin, browser: Browser, make_user: Any
) -> None:
    make_user(Role.AUTHOR, email="maya@example.com", name="Maya Okafor", password=PASSWORD)
    db.session.remove()
    page = browser.new_page()
    sign_in(page, live, "maya@example.com")

    page.get_by_role("link", name="New post").click()
    page.get_by_label("Title", exact=True).fill("Scheduling from a browser")
    page.get_by_label("Body (Markdown)").fill(
        "The scheduler makes this **public**.\n\n- one\n- two"
    )
    page.get_by_label("Tags", exact=True).fill("Browser testing, Flask")
    page.get_by_role("button", name="Preview").click()
    preview = page.frame_locator("iframe[name=preview]")
    expect(preview.locator("h1")).to_have_text("Scheduling from a browser")
    expect(preview.locator("strong")).to_have_text("public")

    # The site's time zone is UTC here, so the wall-clock time typed is the UTC time.  The
    # picker takes whole minutes: the next one at least 10 s away (time for the review).
    at = (utcnow() + timedelta(seconds=70)).replace(second=0, microsecond=0)
    page.get_by_label("Publish at").fill(at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule", exact=True).click()
    # "Email subscribers" is ticked, so a review says who will get it before anything is set.
    expect(page.get_by_role("heading", name="Review before emailing")).to_be_visible()
    page.get_by_role("button", name="Schedule and email 0 subscribers").click()
    expect(page.get_by_role("status")).to_contain_text("scheduled for")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-editor.png"), full_page=True)

    # Not public yet: the tag has no published post, so its archive does not exist.
    assert page.request.get(f"{live.url}/tag/browser-testing/").status == 404

    time.sleep(max(0.0, (at - utcnow()).total_seconds()) + 0.5)
    with live.app.app_context():
        assert len(publish_due_posts(db.session, now=utcnow())) == 1
        db.session.commit()
        assert publish_due_posts(db.session, now=utcnow()) == []  # a second run finds nothing

    page.goto(f"{live.url}/tag/browser-testing/")
    expect(page.get_by_role("link", name="Scheduling from a browser")).to_be_visible()
    page.goto(f"{live.url}/admin/")
    expect(page.locator("table").first).to_contain_text("Scheduling from a browser")


def test_a_contributor_saves_drafts_but_cannot_publish(
    live: LiveAdmin, browser: Browser, make_user: Any
) -> None:
    make_user(Role.CONTRIBUTOR, email="cora@example.com", name="Cora Tribe", password=PASSWORD)
    db.session.remove()
    page = browser.new_page()
    sign_in(page, live, "cora@example.com")
    page.get_by_role("link", name="New post").click()
    expect(page.get_by_role("button", name="Save draft")).to_have_count(1)
    expect(page.get_by_role("button", name="Publish only")).to_have_count(0)
    expect(page.get_by_role("button", name="Publish and email subscribers")).to_have_count(0)
    expect(page.get_by_role("button", name="Schedule", exact=True)).to_have_count(0)
    page.get_by_label("Title", exact=True).fill("A contributor's draft")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("Saved as a draft")

    # Even a hand-made request with a valid token is refused by the service.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    version = page.locator("input[name=version]").get_attribute("value")
    refused = page.request.post(
        page.url,
        form={
            "csrf_token": token or "",
            "title": "Published anyway",
            "version": version or "",
            "action": "publish",
        },
    )
    assert refused.status == 403
    assert "cannot publish" in refused.text()
    page.goto(f"{live.url}/admin/posts/?status=published")
    expect(page.get_by_text("No posts match.")).to_be_visible()


def _watch_console(page: Page) -> list[str]:
    """Errors the page reports (a script the Content-Security-Policy blocked shows here), and
    files it could not load (the browser's own guess at /favicon.ico aside)."""
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def response(answer: Any) -> None:
        if answer.status >= 400 and not answer.url.endswith("/favicon.ico"):
            problems.append(f"{answer.status} {answer.url}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", response)
    return problems


def test_the_editors_scripts_run_under_the_content_security_policy(
    live: LiveAdmin, browser: Browser, make_user: Any, make_post: Any
) -> None:
    make_user(Role.EDITOR, email="eda@example.com", name="Eda Ito", password=PASSWORD)
    make_post("Tagged", tags=["Flask", "Python"])
    db.session.remove()
    page = browser.new_page()
    problems = _watch_console(page)
    sign_in(page, live, "eda@example.com")
    page.get_by_role("link", name="New post").click()
    page.wait_for_load_state("load")  # tags.js listens only once it has run
    # tags.js (a static file, no inline script) offers "what is typed, <tag>" after a comma.
    page.get_by_label("Tags", exact=True).fill("Python, Fl")
    options = page.locator("#tag-names option")
    expect(options).to_have_count(1)
    assert options.first.get_attribute("value") == "Python, Flask"
    page.get_by_label("Title", exact=True).fill("Framed preview")
    page.get_by_role("button", name="Preview").click()
    expect(page.frame_locator("iframe[name=preview]").locator("h1")).to_have_text("Framed preview")
    assert problems == []


def test_the_api_docs_render_from_the_sites_own_files(live: LiveAdmin, browser: Browser) -> None:
    page = browser.new_page()
    problems = _watch_console(page)
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda r: elsewhere.append(r.url) if not r.url.startswith(live.url) else None,
    )
    response = page.goto(f"{live.url}/api/docs")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.get_by_text("/api/v1/posts/", exact=True).first).to_be_visible(timeout=15000)
    assert problems == []
    assert elsewhere == []  # Swagger UI comes from the site, not a CDN


def test_enter_in_the_title_never_submits_and_leaving_unsaved_changes_asks_first(
    live: LiveAdmin, browser: Browser, make_user: Any
) -> None:
    make_user(Role.EDITOR, email="eda@example.com", name="Eda Ito", password=PASSWORD)
    db.session.remove()
    page = browser.new_page()
    problems = _watch_console(page)
    sign_in(page, live, "eda@example.com")
    page.get_by_role("link", name="New post").click()
    editor_url = page.url
    page.get_by_label("Title", exact=True).fill("Half a thought")
    page.get_by_label("Title", exact=True).press("Enter")
    page.get_by_label("Body (Markdown)").press("Enter")  # a textarea keeps its Enter
    page.wait_for_timeout(300)
    assert page.url == editor_url
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0

    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.type)
        dialog.dismiss()  # stay on the page

    page.on("dialog", answer)
    page.get_by_role("link", name="Posts").first.click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload"]
    assert page.url == editor_url
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Saved as a draft.")).to_be_visible()
    assert asked == ["beforeunload"]  # saving leaves without asking
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Post)) == 1

    # A save the server refuses comes back with the text, unsaved: leaving still asks.
    page.get_by_label("Slug", exact=True).fill("Not A Slug!")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".has-error")).to_be_visible()
    page.get_by_role("link", name="Posts").first.click()
    page.wait_for_timeout(300)
    assert asked == ["beforeunload", "beforeunload"]
    assert problems == [f"422 {page.url}"]  # the refused save, and nothing else
