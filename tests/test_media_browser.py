"""A writer pastes one image and drops another onto the editor's body in a real Chromium;
each is uploaded, its Markdown lands at the cursor, and the published post shows both,
responsive (srcset) and sized."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from broadsheet.accounts.models import Role
from broadsheet.extensions import db
from broadsheet.media.models import Image
from broadsheet.media.tasks import process_image
from tests import media_images as pictures
from tests.browser import chromium, live_site
from tests.staff import PASSWORD

pytestmark = pytest.mark.browser

# Builds a File from base64 in the page and fires a paste or drop event carrying it.
SEND_FILE = """([kind, name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, {type}));
  const body = document.querySelector('textarea.markdown');
  body.focus();
  body.setSelectionRange(body.value.length, body.value.length);
  const event = kind === 'paste'
    ? new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true})
    : new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true});
  body.dispatchEvent(event);
}"""


@pytest.fixture
def live(app: Flask, database_url: str, tmp_path: Path) -> Iterator[tuple[str, Flask]]:
    with live_site(database_url, tmp_path) as served:
        yield served


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _send(page: Page, kind: str, name: str, mimetype: str, data: bytes) -> None:
    page.evaluate(SEND_FILE, [kind, name, mimetype, base64.b64encode(data).decode()])


def test_a_writer_pastes_and_drops_images_into_a_post_that_shows_them_responsive(
    live: tuple[str, Flask], browser: Browser, make_user: Any
) -> None:
    url, served = live
    make_user(Role.AUTHOR, email="ines@example.com", name="Inès", password=PASSWORD)
    db.session.remove()
    page = browser.new_page()
    alts = iter(["A pasted chart", "A dropped photo"])
    page.on("dialog", lambda dialog: dialog.accept(next(alts)))
    page.goto(f"{url}/admin/login")
    page.get_by_label("Email").fill("ines@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="New post").click()
    page.get_by_label("Title", exact=True).fill("Pictures from a browser")
    body = page.get_by_label("Body (Markdown)")
    body.fill("Before the pictures.\n\n")
    expect(page.get_by_role("button", name="Insert image…")).to_be_visible()

    _send(page, "paste", "chart.png", "image/png", pictures.png(1000, 500))
    expect(page.locator(".image-status")).to_have_text("Inserted chart.png.")
    _send(page, "drop", "photo.jpg", "image/jpeg", pictures.jpeg_with_gps(1800, 1200))
    expect(page.locator(".image-status")).to_have_text("Inserted photo.jpg.")
    text = body.input_value()
    assert text.startswith("Before the pictures.\n\n![A pasted chart](/media/images/")
    assert "/chart.png)\n\n![A dropped photo](/media/images/" in text
    assert text.endswith("/photo.jpg)\n")
    # The live preview shows both at once, before the worker has made a single size: their
    # addresses lead to the clean display copies made at upload.
    previewed = page.frame_locator("iframe[name=preview]").locator("img")
    expect(previewed).to_have_count(2)
    for image in previewed.all():
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )

    page.get_by_role("button", name="Publish only").click()
    expect(page.locator(".flash.info")).to_contain_text("published")
    # The worker's part, done here in the served app (its store): the worker has its own test.
    with served.app_context():
        for image_id in db.session.scalars(select(Image.id)).all():
            assert process_image.run(image_id)

    page.goto(f"{url}/pictures-from-a-browser/")
    shown = page.locator(".prose img")
    expect(shown).to_have_count(2)
    chart, photo = shown.nth(0), shown.nth(1)
    expect(chart).to_have_attribute("alt", "A pasted chart")
    expect(chart).to_have_attribute("width", "1000")
    expect(photo).to_have_attribute("loading", "lazy")
    for image in (chart, photo):
        assert ".webp 480w" in (image.get_attribute("srcset") or "")
        image.scroll_into_view_if_needed()
        page.wait_for_function(
            "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
