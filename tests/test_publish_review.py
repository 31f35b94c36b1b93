"""Emailing a post goes through a review: who will get it, the subject, then a final button.

Nothing is published or mailed before the confirm (checked at a real SMTP
server on loopback); the count the review shows is the number mailed; the
send page says who was left out and why; the Admin API says how many it mails.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import load_post
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import delivery, sending
from broadsheet.newsletter.mailers import SmtpMailer
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from tests.conftest import NOW
from tests.newsletter import make_subscriber
from tests.smtp import Recorder
from tests.staff import PASSWORD, csrf_token, post_form, separate_client, sign_in

FIELDS = {"markdown": "Hello *world*.", "tags": "Python, Flask"}


def _staff(app: Flask, make_user: Any, role: Role, email: str) -> FlaskClient:
    make_user(role, email=email, password=PASSWORD)
    client = separate_client(app)
    sign_in(client, email)
    return client


def _readers() -> None:
    """Three who will get a Python/Flask post, and three who will not."""
    make_subscriber("all-1@example.com")
    make_subscriber("all-2@example.com")
    make_subscriber("py@example.com", tags=["Python"])
    make_subscriber("ruby-1@example.com", tags=["Ruby"])
    make_subscriber("ruby-2@example.com", tags=["Ruby"])
    make_subscriber("waiting@example.com", status=SubscriberStatus.PENDING)


def _post(title: str) -> Post:
    db.session.expire_all()
    found = db.session.scalar(select(Post.id).where(Post.title == title))
    assert found is not None
    return load_post(db.session, found)


def _deliver(app: Flask, send_id: int, smtp: Recorder) -> None:
    delivery.run_batch(
        db.session, SmtpMailer("127.0.0.1", smtp.port), app.config, send_id=send_id,
        first_id=0, last_id=10**9, owner="test-task", clock=utcnow,
    )  # fmt: skip
    db.session.commit()


def _confirm_data(page: str) -> dict[str, str]:
    version = re.search(r'name="version" value="(\d+)"', page)
    at = re.search(r'name="at" value="([^"]*)"', page)
    assert version, page
    assert at, page
    return {"csrf_token": csrf_token(page), "version": version.group(1), "at": at.group(1)}


def test_the_review_mails_nobody_until_confirmed_then_exactly_whom_it_counted(
    app: Flask, make_user: Any, smtp_server: Recorder
) -> None:
    _readers()
    client = _staff(app, make_user, Role.EDITOR, "ed@example.com")
    saved = post_form(
        client, "/admin/posts/new", {"title": "Loud one", "action": "publish_email", **FIELDS}
    )
    assert saved.status_code == 302
    review = client.get(saved.headers["Location"])
    assert review.status_code == 200
    text = review.text
    assert (
        "This will email <strong>3</strong> subscribers: subscribers who follow every post, "
        "or those following Python or Flask." in text
    )
    assert '<dd id="review-subject">Loud one</dd>' in text
    assert "Nothing is sent yet" in text
    post = _post("Loud one")
    assert post.status is PostStatus.DRAFT
    assert sending.send_for_post(db.session, post.id) is None
    assert smtp_server.count() == 0  # the review page sent nothing

    done = client.post(f"/admin/posts/{post.id}/publish/", data=_confirm_data(text))
    assert done.status_code == 302
    send = sending.send_for_post(db.session, post.id)
    assert send is not None
    editor = client.get(done.headers["Location"]).text
    assert "the post is published and is being emailed to 3 subscribers — " in editor
    assert f'<a href="/admin/sends/{send.id}/">watch progress</a>' in editor
    assert smtp_server.count() == 0  # not yet: the send's batches are the workers'
    _deliver(app, send.id, smtp_server)
    assert set(smtp_server.recipients()) == {
        "all-1@example.com",
        "all-2@example.com",
        "py@example.com",
    }
    assert smtp_server.count() == 3  # the count shown is the number mailed
    assert _post("Loud one").status is PostStatus.PUBLISHED


def test_an_edit_after_the_review_is_refused_and_nothing_goes(
    app: Flask, make_user: Any, smtp_server: Recorder
) -> None:
    _readers()
    client = _staff(app, make_user, Role.EDITOR, "ed@example.com")
    saved = post_form(
        client, "/admin/posts/new", {"title": "Racy", "action": "publish_email", **FIELDS}
    )
    review = client.get(saved.headers["Location"]).text
    post = _post("Racy")
    other = _staff(app, make_user, Role.ADMIN, "admin@example.com")
    page = other.get(f"/admin/posts/{post.id}/").text
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page)
    assert version
    changed = {"title": "Racy, changed", "action": "save", "version": version.group(1), **FIELDS}
    assert other.post(f"/admin/posts/{post.id}/", data={"csrf_token": csrf_token(page), **changed})
    refused = client.post(
        f"/admin/posts/{post.id}/publish/", data=_confirm_data(review), follow_redirects=True
    )
    assert "Someone else saved" in refused.text
    assert "Nothing was published or sent" in refused.text
    assert _post("Racy, changed").status is PostStatus.DRAFT
    assert sending.send_for_post(db.session, post.id) is None
    assert smtp_server.count() == 0


def test_scheduling_with_email_is_reviewed_too(app: Flask, make_user: Any) -> None:
    _readers()
    client = _staff(app, make_user, Role.EDITOR, "ed@example.com")
    form = {"title": "Later", "action": "schedule", "publish_at": "2099-07-01T09:00", **FIELDS}
    saved = post_form(client, "/admin/posts/new", {**form, "email_on_publish": "1"})
    review = client.get(saved.headers["Location"]).text
    assert "This will email <strong>3</strong> subscribers" in review
    assert "2099-07-01 09:00" in review
    assert "Schedule and email 3 subscribers" in review
    assert _post("Later").status is PostStatus.DRAFT
    done = client.post(f"/admin/posts/{_post('Later').id}/publish/", data=_confirm_data(review))
    assert done.status_code == 302
    post = _post("Later")
    assert post.status is PostStatus.SCHEDULED
    assert post.email_on_publish
    assert sending.send_for_post(db.session, post.id) is None


def test_a_contributor_cannot_reach_the_review_of_someone_elses_post(
    app: Flask, make_user: Any, make_post: Any
) -> None:
    _readers()
    theirs = make_post("Not yours", status=PostStatus.DRAFT)
    client = _staff(app, make_user, Role.CONTRIBUTOR, "con@example.com")
    assert client.get(f"/admin/posts/{theirs.id}/publish/?version=1").status_code in {403, 404}
    page = client.get("/admin/").text
    confirm = {"csrf_token": csrf_token(page), "version": str(theirs.version), "at": ""}
    assert client.post(f"/admin/posts/{theirs.id}/publish/", data=confirm).status_code in {
        403,
        404,
    }
    assert _post("Not yours").status is PostStatus.DRAFT
    assert sending.send_for_post(db.session, theirs.id) is None


def test_the_admin_api_says_how_many_it_mails(app: Flask, make_user: Any, make_post: Any) -> None:
    _readers()
    user = make_user(Role.EDITOR, email="api@example.com")
    _token, secret = create_token(db.session, user, label="test", now=NOW)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    created = client.post(
        "/api/v1/admin/posts/",
        json={"title": "By API", "markdown": "Hi.", "tags": ["Python", "Flask"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    post_id = created.json["post"]["id"]
    later = (utcnow() + timedelta(days=1)).isoformat()
    scheduled = client.post(
        f"/api/v1/admin/posts/{post_id}/schedule/",
        json={"publish_at": later, "email": True},
        headers=headers,
    )
    assert scheduled.status_code == 200, scheduled.text
    assert scheduled.json["recipients"] == 3
    published = client.post(
        f"/api/v1/admin/posts/{post_id}/publish/", json={"email": True}, headers=headers
    )
    assert published.status_code == 200, published.text
    assert published.json["recipients"] == 3
    send = sending.send_for_post(db.session, post_id)
    assert send is not None
    assert send.recipients == 3
    again = client.post(
        f"/api/v1/admin/posts/{post_id}/publish/", json={"email": True}, headers=headers
    )
    assert again.json["recipients"] == 0  # a post is emailed once
    quiet = make_post("Quiet", status=PostStatus.DRAFT)
    plain = client.post(f"/api/v1/admin/posts/{quiet.id}/publish/", json={}, headers=headers)
    assert plain.json["recipients"] is None


def test_the_send_page_says_who_was_left_out_and_why(
    app: Flask, make_user: Any, make_post: Any, smtp_server: Recorder
) -> None:
    _readers()
    make_subscriber("ruby-3@example.com", tags=["Ruby"])
    post = make_post("Tagged", status=PostStatus.DRAFT, tags=["Python", "Flask"])
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=utcnow())
    db.session.commit()
    assert send is not None
    assert send.recipients == 3
    # Two listed readers leave before their copies go.
    for email in ("all-2@example.com", "py@example.com"):
        reader = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert reader is not None
        reader.status = SubscriberStatus.UNSUBSCRIBED
        reader.unsubscribed_at = utcnow() + timedelta(seconds=1)
    db.session.commit()
    _deliver(app, send.id, smtp_server)
    assert set(smtp_server.recipients()) == {"all-1@example.com"}

    client = _staff(app, make_user, Role.ADMIN, "admin@example.com")
    page = client.get(f"/admin/sends/{send.id}/").text
    assert "3 confirmed subscribers follow only other tags" in page
    assert "2 subscribers unsubscribed after the publish and were skipped" in page
    assert "1 subscriber had not confirmed their address" in page


def test_the_openapi_document_names_the_recipients_of_publish_and_schedule(
    client: FlaskClient,
) -> None:
    document = client.get("/api/openapi.json").get_json()
    for action in ["publish", "schedule"]:
        operation = document["paths"][f"/api/v1/admin/posts/{{post_id}}/{action}/"]["post"]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        body = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert "recipients" in body["required"]
        assert "how many subscribers" in body["properties"]["recipients"]["description"]
