"""Scheduling in the editor: the email choice kept on every save, the date picker's default
and time zone, and an error shown beside the date with the cursor on it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import load_post
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import sending
from broadsheet.settings.services import update_site_settings
from tests.newsletter import make_subscriber
from tests.staff import PASSWORD, post_form, separate_client, sign_in


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return separate_client(app)


@pytest.fixture
def editor(make_user: Any) -> User:
    return make_user(Role.EDITOR, email="ed@example.com", name="Ed Itor", password=PASSWORD)


def _paris() -> None:
    update_site_settings(db.session, actor=OPERATOR, now=utcnow(), title="Blog", description="",
                         timezone="Europe/Paris", posts_per_page=10)  # fmt: skip
    db.session.commit()


def _post(title: str) -> Post:
    db.session.expire_all()
    found = db.session.scalar(select(Post.id).where(Post.title == title))
    assert found is not None
    return load_post(db.session, found)


def _form(page: str) -> dict[str, Any]:
    """What a browser submits from the editor ``page`` as it stands (nothing changed)."""
    form = lxml.html.fromstring(page).get_element_by_id("post-form")
    return {name: value for name, value in form.form_values() if name != "action"}


def _press(client: FlaskClient, url: str, action: str, **changes: Any) -> Any:
    page = client.get(url).text
    return client.post(url, data={**_form(page), "action": action, **changes})


def _input(page: str, name: str) -> Any:
    found = lxml.html.fromstring(page).xpath(f'//*[@name="{name}"]')
    assert len(found) == 1, name
    return found[0]


def test_the_email_choice_survives_save_reopen_and_schedule_and_the_post_is_mailed(
    app: Flask, client: FlaskClient, editor: User
) -> None:
    make_subscriber("reader@example.com")
    sign_in(client, editor.email)
    new = client.get("/admin/posts/new").text
    assert _input(new, "email_on_publish").get("checked") is not None  # ticked for a new post
    saved = _press(client, "/admin/posts/new", "save", title="Kept choice", markdown="Hi.")
    assert saved.status_code == 302
    post = _post("Kept choice")
    assert post.email_on_publish
    url = f"/admin/posts/{post.id}/"
    reopened = client.get(url).text
    assert _input(reopened, "email_on_publish").get("checked") is not None
    assert _press(client, url, "save", markdown="Hi again.").status_code == 302
    assert _post("Kept choice").email_on_publish
    at = (utcnow() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    scheduled = _press(client, url, "schedule", publish_at=at)
    assert scheduled.status_code == 302
    assert _post("Kept choice").status is PostStatus.DRAFT  # nothing before the review
    review = lxml.html.fromstring(client.get(scheduled.headers["Location"]).text)
    [confirm] = review.xpath("//form[contains(@action, '/publish/')]")
    assert client.post(confirm.action, data=dict(confirm.form_values())).status_code == 302
    post = _post("Kept choice")
    assert (post.status, post.email_on_publish) == (PostStatus.SCHEDULED, True)
    assert "with an email to subscribers" in client.get(url).text
    # When its time comes the scheduler mails it.
    assert post.published_at is not None
    due = post.published_at
    db.session.expire_all()  # as the scheduler's task starts: nothing loaded
    sending.publish_due_posts(db.session, now=due)
    db.session.commit()
    send = sending.send_for_post(db.session, post.id)
    assert send is not None
    assert send.recipients == 1


def test_unticking_the_email_choice_is_kept_too(client: FlaskClient, editor: User) -> None:
    sign_in(client, editor.email)
    page = client.get("/admin/posts/new").text
    data = {**_form(page), "action": "save", "title": "No mail"}
    data.pop("email_on_publish")  # an unticked box is not sent
    assert client.post("/admin/posts/new", data=data).status_code == 302
    post = _post("No mail")
    assert not post.email_on_publish
    reopened = client.get(f"/admin/posts/{post.id}/").text
    assert _input(reopened, "email_on_publish").get("checked") is None


def _quarter_after(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0)
    return (local + timedelta(minutes=15 - local.minute % 15)).strftime("%Y-%m-%dT%H:%M")


def test_the_picker_starts_at_the_next_quarter_hour_in_the_sites_zone_which_it_names(
    client: FlaskClient, editor: User
) -> None:
    _paris()
    sign_in(client, editor.email)
    before = datetime.now(UTC)
    page = client.get("/admin/posts/new").text
    after = datetime.now(UTC)
    picker = _input(page, "publish_at")
    assert picker.get("type") == "datetime-local"
    assert picker.get("step") == "60"  # minutes: no seconds to fill in
    assert picker.get("value") in {_quarter_after(before, "Europe/Paris"),
                               _quarter_after(after, "Europe/Paris")}  # fmt: skip
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:(00|15|30|45)", picker.get("value"))
    zone = lxml.html.fromstring(page).get_element_by_id(picker.get("aria-describedby"))
    assert "Europe/Paris" in zone.text_content()
    # A draft opened again offers the same kind of default; a scheduled one keeps its time.
    post_form(client, "/admin/posts/new", {"title": "Draft", "action": "save"})
    reopened = _input(client.get(f"/admin/posts/{_post('Draft').id}/").text, "publish_at")
    assert reopened.get("value").endswith((":00", ":15", ":30", ":45"))


@pytest.mark.parametrize("when", ["", "2001-01-01T09:00", "tomorrow"])
def test_a_missing_or_past_date_is_refused_beside_the_field_with_the_cursor_on_it(
    client: FlaskClient, editor: User, when: str
) -> None:
    sign_in(client, editor.email)
    refused = _press(client, "/admin/posts/new", "schedule", title="Too soon", publish_at=when)
    assert refused.status_code == 422
    picker = _input(refused.text, "publish_at")
    assert picker.get("autofocus") is not None
    assert picker.get("aria-invalid") == "true"
    beside = picker.getparent().find_class("error")  # in the field's own box
    assert len(beside) == 1
    assert beside[0].text_content().strip()
    focused = lxml.html.fromstring(refused.text).xpath("//*[@autofocus]")
    assert [element.get("name") for element in focused] == ["publish_at"]
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0
