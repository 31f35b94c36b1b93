"""A real Chromium opens the site as a reader would, on a phone and a desktop, light and dark.

The app is served by a real HTTP server on 127.0.0.1 against the test
database; screenshots go to tests/artifacts/ (ignored by git) for a person
to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from broadsheet.extensions import db
from tests.browser import ARTIFACTS, chromium, require_chromium, served

pytestmark = pytest.mark.browser

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}

BODY = """Every archive page on this site is one range scan of one index, newest first.

## Why it matters

Readers land on tag archives more than on any other page, so they must be fast.

```python
def archive(tag, page=1):
    return tag.posts.order_by(Post.published_at.desc()).limit(10)
```

> Measure first: the slow part is rarely the part you suspect.

- one query for the count
- one for the page
"""


@dataclass
class Site:
    url: str
    backend: str


@pytest.fixture
def site(app: Flask, make_post: Any, backend: str) -> Iterator[Site]:
    require_chromium()
    for number in range(1, 12):
        make_post(f"Notes from week {number}", tags=["Flask", "Python"], markdown=f"Week {number}.")
    make_post("Fast tag archives", tags=["Flask", "PostgreSQL", "#internal"], markdown=BODY)
    db.session.remove()  # the server's threads open their own sessions
    with served(app) as url:
        yield Site(url, backend)


@pytest.fixture
def browser(site: Site) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _open(context: Any, url: str, problems: list[str]) -> Any:
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"{url}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{url}: {e}"))
    response = page.goto(url, wait_until="load")
    assert response is not None
    assert response.status == 200, url
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_reader_sees_home_a_post_and_a_tag_archive(
    browser: Any, site: Site, scheme: str, device: str
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(
        viewport=VIEWPORTS[device], color_scheme=scheme, java_script_enabled=False
    )
    problems: list[str] = []
    try:
        shots = f"{site.backend}-{device}-{scheme}"

        home = _open(context, f"{site.url}/", problems)
        assert home.get_by_role("link", name="Fast tag archives").is_visible()
        assert home.get_by_role("link", name="Older posts").is_visible()
        home.screenshot(path=ARTIFACTS / f"home-{shots}.png", full_page=True)

        post = _open(context, f"{site.url}/fast-tag-archives/", problems)
        assert post.get_by_role("heading", level=1).text_content() == "Fast tag archives"
        assert post.get_by_role("heading", name="Why it matters").is_visible()
        assert post.locator("pre code").inner_text().startswith("def archive(tag, page=1):")
        assert post.get_by_role("link", name="PostgreSQL").is_visible()
        assert post.get_by_text("#internal").count() == 0
        post.screenshot(path=ARTIFACTS / f"post-{shots}.png", full_page=True)

        archive = _open(context, f"{site.url}/tag/flask/", problems)
        heading = archive.get_by_role("heading", level=1).text_content()
        assert " ".join(heading.split()) == "Tag Archives: Flask"
        assert archive.get_by_text("12 posts").is_visible()
        archive.screenshot(path=ARTIFACTS / f"tag-{shots}.png", full_page=True)

        background = archive.evaluate("getComputedStyle(document.body).backgroundColor")
        dark = sum(int(c) for c in background[4:-1].split(",")) < 3 * 128
        assert dark is (scheme == "dark"), background
        # Nothing spills sideways on a phone.
        width = archive.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[device]["width"]
    finally:
        context.close()
    assert problems == []


def test_keyboard_focus_is_visible_and_skip_link_comes_first(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    problems: list[str] = []
    try:
        page = _open(context, f"{site.url}/tag/flask/", problems)
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const e = document.activeElement; const s = getComputedStyle(e);"
            " return [e.textContent.trim(), s.outlineStyle, s.outlineWidth]; })()"
        )
        assert focused[0] == "Skip to content"
        page.keyboard.press("Tab")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"
        page.screenshot(path=ARTIFACTS / f"focus-{site.backend}.png")
    finally:
        context.close()
    assert problems == []
