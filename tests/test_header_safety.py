"""A line break in a title must never stall a newsletter or reach a mail header.

A title ends up as an email's Subject and the site title in its From name; the mail
library refuses a header with a newline, which once aborted a batch and left the
sweeper retrying it for ever.  The services refuse such titles, and a message that
still cannot be made fails its delivery for good, with the reason, like a 5xx.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token
from broadsheet.content.models import Post, PostStatus
from broadsheet.errors import Invalid
from broadsheet.extensions import db
from broadsheet.newsletter import delivery, sending
from broadsheet.newsletter.mailers import SmtpMailer
from broadsheet.newsletter.models import Delivery, DeliveryStatus, SendStatus
from broadsheet.settings.services import site_settings, update_site_settings
from tests.conftest import NOW
from tests.newsletter import make_subscriber
from tests.smtp import Recorder

BROKEN_TITLES = [
    "Hello\nBcc: everyone@example.com",
    "Hello\r\nX-Injected: yes",
    "Tab\tin the title",
    "Line\u2028separator",
    "NUL\x00byte",
]


@pytest.mark.parametrize("title", BROKEN_TITLES)
def test_a_title_with_a_line_break_or_control_character_is_refused(
    app: Flask, make_post: Any, title: str
) -> None:
    with pytest.raises(Invalid) as refused:
        make_post(title)
    assert "one line" in refused.value.fields["title"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0


def test_the_admin_api_answers_a_broken_title_with_a_problem_naming_the_field(
    client: FlaskClient, make_user: Any
) -> None:
    editor = make_user(Role.EDITOR)
    _token, secret = create_token(db.session, editor, label="test", now=NOW)
    db.session.commit()
    response = client.post(
        "/api/v1/admin/posts/",
        json={"title": "Hello\nBcc: x@example.com", "markdown": "Body."},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    assert "title" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0


def test_the_site_title_refuses_a_line_break_and_keeps_the_old_one(app: Flask) -> None:
    before = site_settings(db.session, app.config).title
    with pytest.raises(Invalid) as refused:
        update_site_settings(db.session, actor=OPERATOR, now=NOW, title="My\nBlog",
                             description="", timezone="UTC", posts_per_page=10)  # fmt: skip
    assert "title" in refused.value.fields
    db.session.rollback()
    assert site_settings(db.session, app.config).title == before


def test_a_message_that_cannot_be_made_fails_its_delivery_once_with_the_reason(
    app: Flask, smtp_server: Recorder, make_post: Any
) -> None:
    make_subscriber("reader@example.com")
    make_subscriber("other@example.com")
    post = make_post("A fine title", status=PostStatus.DRAFT)
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    assert send is not None
    # A title stored before titles were checked (or written around the services).
    db.session.execute(update(Post).where(Post.id == post.id).values(title="Broken\nBcc: x@y.z"))
    db.session.commit()

    result = delivery.run_batch(
        db.session, SmtpMailer("127.0.0.1", smtp_server.port), app.config, send_id=send.id,
        first_id=0, last_id=10**9, owner="test-task", clock=lambda: NOW,
    )  # fmt: skip

    assert (result.sent, result.retried, result.failed) == (0, 0, 2)
    assert result.stopped is None
    rows = db.session.scalars(select(Delivery).where(Delivery.send_id == send.id)).all()
    assert {row.status for row in rows} == {DeliveryStatus.FAILED}
    assert all("could not be made" in (row.last_error or "") for row in rows)
    assert all(row.attempts == 1 for row in rows)
    assert smtp_server.recipients() == {}  # nothing half-made reached the server
    db.session.expire_all()
    assert sending.send_progress(db.session, send.id, actor=OPERATOR).status is SendStatus.DONE
