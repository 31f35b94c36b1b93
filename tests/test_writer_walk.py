"""A writer's whole way to an emailed post, in a real Chromium: write, preview the email,
send a test to themselves, schedule with email, review who will get it, confirm.

The server runs on 127.0.0.1 with tasks run as they are queued and mail going over SMTP
to a recorder on loopback, so each step's email (or its absence) is seen where a
reader's inbox would be.  The scheduler is the service the beat task runs, called for
the moment chosen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect

from broadsheet.accounts.models import Role
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import delivery, sending
from broadsheet.newsletter.mailers import SmtpMailer
from tests.browser import chromium, live_site
from tests.newsletter import make_subscriber
from tests.smtp import Recorder
from tests.staff import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def site(
    app: Flask, database_url: str, tmp_path: Path, smtp_server: Recorder
) -> Iterator[tuple[str, Flask]]:
    """The app served on loopback; its tasks run as they are queued, its mail goes over SMTP."""
    with live_site(
        database_url, tmp_path, CELERY_TASK_ALWAYS_EAGER=True,
        MAIL_BACKEND="smtp", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port,
    ) as served:  # fmt: skip
        yield served


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_a_writer_previews_tests_schedules_and_confirms_an_emailed_post(
    site: tuple[str, Flask], browser: Browser, make_user: Any, smtp_server: Recorder
) -> None:
    url, live = site
    make_user(Role.EDITOR, email="eda@example.com", name="Eda Ito", password=PASSWORD)
    make_subscriber("reader@example.com")
    db.session.remove()
    page = browser.new_page()
    page.goto(f"{url}/admin/login")
    page.get_by_label("Email").fill("eda@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # Write, and save a draft.
    page.get_by_role("link", name="New post").click()
    page.wait_for_load_state("load")
    page.get_by_label("Title", exact=True).fill("A walk to the inbox")
    page.get_by_label("Body (Markdown)").fill("## Why\n\nBecause **readers** like it.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("status")).to_contain_text("draft")

    # Preview the email and send a test: it reaches the writer only.
    page.get_by_role("link", name="Preview the email, send a test").click()
    expect(page.get_by_role("heading", name="The email subscribers will get")).to_be_visible()
    expect(page.locator(".email-subject")).to_have_text("A walk to the inbox")
    expect(page.locator(".email-text")).to_contain_text("Because readers like it.")
    page.get_by_role("button", name="Send a test to me (eda@example.com)").click()
    expect(page.get_by_role("status")).to_contain_text("eda@example.com")
    assert smtp_server.recipients() == {"eda@example.com": 1}

    # Schedule with email: a review says who will get it, and nothing goes before confirm.
    page.get_by_role("link", name="Back to the editor").click()
    page.wait_for_load_state("load")
    expect(page.get_by_label("Email subscribers when it is published")).to_be_checked()
    at = (utcnow() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    page.get_by_label("Publish at").fill(at.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule", exact=True).click()
    expect(page.get_by_role("heading", name="Review before emailing")).to_be_visible()
    expect(page.locator("#review-audience")).to_contain_text("1 subscriber")
    assert smtp_server.recipients() == {"eda@example.com": 1}  # the review sent nothing
    page.get_by_role("button", name="Schedule and email 1 subscriber").click()
    expect(page.get_by_role("status")).to_contain_text("scheduled for")
    expect(page.locator(".email-choice")).to_have_text("with an email to subscribers")

    # When its moment comes, the scheduler publishes it and a worker sends it (both run
    # here as they would at that moment): the reader gets it, once.
    with live.app_context():
        [post_id] = sending.publish_due_posts(db.session, now=at)
        db.session.commit()
        send = sending.send_for_post(db.session, post_id)
        assert send is not None
        delivery.run_batch(
            db.session, SmtpMailer("127.0.0.1", smtp_server.port), live.config,
            send_id=send.id, first_id=0, last_id=10**9, owner="walk", clock=lambda: at,
        )  # fmt: skip
    assert smtp_server.recipients() == {"eda@example.com": 1, "reader@example.com": 1}
