"""The editor's live work in a real Chromium: a preview as the writer types, autosave, Ctrl-S,
and two tabs on one draft where the second to save sees the difference and keeps their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from broadsheet.accounts.models import Role, User
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import load_post
from broadsheet.extensions import db
from tests.browser import chromium, live_site
from tests.staff import PASSWORD

pytestmark = pytest.mark.browser

AUTOSAVE_WAIT_MS = 15_000  # the script saves after 3 s of quiet; a loaded machine is slower


@pytest.fixture
def site(app: Flask, database_url: str, tmp_path: Path) -> Iterator[str]:
    with live_site(database_url, tmp_path) as (url, _served):
        yield url


@pytest.fixture
def wren(make_user: Any) -> User:
    return make_user(Role.AUTHOR, email="wren@example.com", name="Wren Writer", password=PASSWORD)


@pytest.fixture
def signed_in(site: str, wren: User) -> Iterator[BrowserContext]:
    """A browser with Wren (an author) signed in; her tabs share the session."""
    db.session.remove()
    with chromium() as browser:
        context = browser.new_context(base_url=site)
        page = context.new_page()
        page.goto("/admin/login")
        page.get_by_label("Email").fill("wren@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        page.close()
        yield context


def _watch(page: Page) -> list[str]:
    """Script errors (a CSP refusal shows here) and failed requests, besides those expected."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    return problems


def _open(context: BrowserContext, path: str) -> Page:
    page = context.new_page()
    page.goto(path)
    page.wait_for_load_state("load")  # editor.js listens once it has run
    return page


def _saved_text(post_id: int) -> str:
    """The post's saved body, its line ends as typed (a browser sends a textarea's as CRLF)."""
    db.session.remove()
    return load_post(db.session, post_id).markdown.replace("\r\n", "\n")


def test_the_preview_follows_the_typing_and_the_draft_saves_itself(
    signed_in: BrowserContext,
) -> None:
    page = _open(signed_in, "/admin/posts/new")
    problems = _watch(page)
    page.get_by_label("Title", exact=True).fill("Night train")
    body = page.get_by_label("Body (Markdown)")
    body.press_sequentially("Sleeper *cabins* are <script>alert(1)</script>small.")
    preview = page.frame_locator("iframe[name=preview]")
    expect(preview.locator("h1")).to_have_text("Night train")
    expect(preview.locator("em")).to_have_text("cabins")
    expect(preview.locator("script")).to_have_count(0)
    expect(page.locator("#word-count")).to_have_text("4 words · 1 min read")

    # No button pressed: the draft is saved, the page now edits it, and leaving asks nothing.
    expect(page.locator("#save-status")).to_have_text("Saved", timeout=AUTOSAVE_WAIT_MS)
    expect(page.locator("#save-age")).to_contain_text(" s ago")
    assert page.locator("#save-status").get_attribute("aria-live") == "polite"
    [post] = db.session.scalars(select(Post)).all()
    post_id = post.id
    assert page.url.endswith(f"/admin/posts/{post_id}/")
    assert (post.title, post.status) == ("Night train", PostStatus.DRAFT)
    assert post.markdown == "Sleeper *cabins* are <script>alert(1)</script>small."

    # Ctrl-S saves at once, without leaving the page.
    body.press("End")
    body.press_sequentially(" Bring earplugs.")
    with page.expect_response(lambda r: r.url.endswith("/admin/editor/save")) as answer:
        page.keyboard.press("Control+s")
    assert answer.value.ok
    expect(page.locator("#save-age")).to_have_text(re.compile(r"^\d+ s ago$"))
    assert page.url.endswith(f"/admin/posts/{post_id}/")
    assert _saved_text(post_id).endswith("Bring earplugs.")
    page.get_by_role("link", name="Posts").first.click()  # no "unsaved changes" question
    expect(page.get_by_role("heading", level=1)).to_have_text("Posts")
    assert db.session.scalars(select(Post.id)).all() == [post_id]  # one post, not one per save
    assert problems == []


def test_two_tabs_on_one_draft_the_second_sees_the_difference_and_keeps_its_text(
    signed_in: BrowserContext, wren: User, make_post: Any
) -> None:
    post = make_post("Two tabs", markdown="A shared opening.\n\nThe end.",
                     authors=[wren], status=PostStatus.DRAFT)  # fmt: skip
    post_id = post.id
    db.session.remove()
    first = _open(signed_in, f"/admin/posts/{post_id}/")
    second = _open(signed_in, f"/admin/posts/{post_id}/")
    problems = _watch(second)

    first_body = first.get_by_label("Body (Markdown)")
    first_body.fill("A shared opening.\n\nFrom the first tab.")
    expect(first.locator("#save-status")).to_have_text("Saved", timeout=AUTOSAVE_WAIT_MS)

    second_body = second.get_by_label("Body (Markdown)")
    second_body.fill("A shared opening.\n\nFrom the second tab, typed with care.")
    conflict = second.get_by_role("region", name="Someone else saved this post")
    expect(conflict).to_be_visible(timeout=AUTOSAVE_WAIT_MS)
    expect(second.locator("#save-status")).to_contain_text("Not saved")
    expect(conflict.locator("pre.diff .del")).to_contain_text(["-From the first tab."])
    expect(conflict.locator("pre.diff .add")).to_contain_text(
        ["+From the second tab, typed with care."]
    )
    # Nothing typed was lost, and nothing was written over the first tab's save.
    expect(second_body).to_have_value("A shared opening.\n\nFrom the second tab, typed with care.")
    assert _saved_text(post_id) == "A shared opening.\n\nFrom the first tab."

    conflict.get_by_role("button", name="Keep mine (save it over theirs)").click()
    expect(conflict).to_be_hidden()
    expect(second.locator("#save-status")).to_have_text("Saved")
    assert _saved_text(post_id) == "A shared opening.\n\nFrom the second tab, typed with care."
    assert problems == []

    # The first tab, now behind, takes the saved version instead of its own.
    first_body.press("End")
    first_body.press_sequentially(" More.")
    first_conflict = first.get_by_role("region", name="Someone else saved this post")
    expect(first_conflict).to_be_visible(timeout=AUTOSAVE_WAIT_MS)
    first_conflict.get_by_role("button", name="Take the saved version").click()
    expect(first_body).to_have_value("A shared opening.\n\nFrom the second tab, typed with care.")
    expect(first.frame_locator("iframe[name=preview]").locator("p").last).to_have_text(
        "From the second tab, typed with care."
    )


def test_a_refused_save_of_a_published_post_shows_the_difference_and_keeps_the_writers_text(
    signed_in: BrowserContext, wren: User, make_post: Any
) -> None:
    post = make_post("Out there", markdown="What readers read.", authors=[wren])
    post_id = post.id
    db.session.remove()
    first = _open(signed_in, f"/admin/posts/{post_id}/")
    second = _open(signed_in, f"/admin/posts/{post_id}/")
    problems = _watch(second)
    first.get_by_label("Body (Markdown)").fill("A correction from the first tab.")
    first.get_by_role("button", name="Save", exact=True).click()
    expect(first.get_by_role("status")).to_contain_text("published")

    # Published: nothing saves by itself, and the Save button's stale save is refused.
    second.get_by_label("Body (Markdown)").fill("A correction from the second tab.")
    second.get_by_role("button", name="Save", exact=True).click()
    conflict = second.get_by_role("region", name="Someone else saved this post")
    expect(conflict).to_be_visible()
    expect(conflict.locator("pre.diff .del")).to_contain_text(["-A correction from the first tab."])
    expect(second.get_by_label("Body (Markdown)")).to_have_value(
        "A correction from the second tab."
    )
    conflict.get_by_role("button", name="Keep mine (save it over theirs)").click()
    expect(second.locator("#save-status")).to_have_text("Saved")
    assert _saved_text(post_id) == "A correction from the second tab."
    assert problems == []
