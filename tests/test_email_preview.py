"""From the editor, before publishing: the email as a subscriber gets it, and a test to oneself."""

from __future__ import annotations

from typing import Any

import lxml.html
from flask import Flask
from flask_mailman.backends.smtp import EmailBackend
from sqlalchemy import func, select

from broadsheet.accounts.models import Role, User
from broadsheet.content.models import Post, PostStatus
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter.tasks import compose_test_email
from broadsheet.outbox import services as outbox
from broadsheet.outbox.models import OutboxEmail
from tests.mail_client import mail_client_problems
from tests.newsletter import make_subscriber
from tests.smtp import Recorder
from tests.staff import PASSWORD, csrf_token, separate_client, sign_in

BODY = "## Why\n\n- Weekly at most\n- Unsubscribe in one click\n\n[Home](/)\n"


def _draft(make_post: Any) -> Post:
    return make_post("Before it goes", status=PostStatus.DRAFT, markdown=BODY)


def test_the_editor_previews_the_email_as_a_subscriber_gets_it(
    app: Flask, author: User, make_post: Any, make_user: Any
) -> None:
    writer = make_user(Role.AUTHOR, email="writer@example.com", password=PASSWORD)
    post = make_post("Before it goes", status=PostStatus.DRAFT, markdown=BODY, authors=[writer])
    client = separate_client(app)
    sign_in(client, "writer@example.com")

    editor = client.get(f"/admin/posts/{post.id}/")
    assert f'href="/admin/posts/{post.id}/email/"' in editor.text
    shown = client.get(f"/admin/posts/{post.id}/email/")
    assert shown.status_code == 200
    tree = lxml.html.document_fromstring(shown.text)
    assert tree.xpath("string(//dd[@class='email-subject'])") == "Before it goes"
    text = tree.xpath("string(//pre[@class='email-text'])")
    assert "Why" in text.splitlines()
    assert "Weekly at most Unsubscribe" not in text
    assert "https://blog.example.com/unsubscribe/preview" in text
    assert not tree.xpath("//script[not(@src)]")
    [frame] = tree.xpath("//iframe[contains(@class, 'email-preview')]")

    html = client.get(frame.get("src"))
    assert html.status_code == 200
    assert html.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in html.headers["Content-Security-Policy"]
    assert mail_client_problems(html.text) == []
    assert "<h1" in html.text
    assert "Before it goes" in html.text


def test_a_test_send_reaches_only_the_staff_members_address(
    app: Flask, make_user: Any, make_post: Any, smtp_server: Recorder
) -> None:
    make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    make_subscriber("reader@example.com")
    post = _draft(make_post)
    client = separate_client(app)
    sign_in(client, "ed@example.com")
    page = client.get(f"/admin/posts/{post.id}/email/")
    sent = client.post(
        f"/admin/posts/{post.id}/email/test",
        data={"csrf_token": csrf_token(page.text), "to": "reader@example.com"},
    )
    assert sent.status_code == 302
    assert "on its way to ed@example.com" in client.get(sent.headers["Location"]).text

    [row] = db.session.scalars(select(OutboxEmail)).all()
    assert row.recipient == "ed@example.com"
    outcome = outbox.deliver(
        db.session, [row.id], compose=compose_test_email,
        connection=EmailBackend(host="127.0.0.1", port=smtp_server.port, timeout=5),
        delays=(60.0,), clock=utcnow,
    )  # fmt: skip
    assert outcome.sent == 1
    assert [r.recipients for r in smtp_server.received] == [["ed@example.com"]]
    message = smtp_server.received[0].message
    assert message["Subject"] == "Before it goes"
    parts = {part.get_content_type() for part in message.walk()}
    assert {"text/plain", "text/html"} <= parts
    assert db.session.get(Post, post.id).status is PostStatus.DRAFT  # nothing was published


def test_someone_who_cannot_edit_the_post_gets_neither_preview_nor_test(
    app: Flask, make_user: Any, make_post: Any
) -> None:
    make_user(Role.AUTHOR, email="other@example.com", password=PASSWORD)
    post = _draft(make_post)  # Maya's draft
    client = separate_client(app)
    sign_in(client, "other@example.com")
    assert client.get(f"/admin/posts/{post.id}/email/").status_code == 403
    assert client.get(f"/admin/posts/{post.id}/email/html").status_code == 403
    token = csrf_token(client.get("/admin/").text)
    refused = client.post(f"/admin/posts/{post.id}/email/test", data={"csrf_token": token})
    assert refused.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
