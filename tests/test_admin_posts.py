"""Writing in the admin: the editor, the version check, revisions, scheduling, the post list."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post, PostRevision, PostStatus
from broadsheet.content.services import load_post
from broadsheet.extensions import db
from broadsheet.settings.services import update_site_settings
from tests.conftest import NOW
from tests.staff import PASSWORD, csrf_token, post_form, separate_client, sign_in


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return separate_client(app)


@pytest.fixture
def writer(make_user: Any) -> User:
    return make_user(Role.AUTHOR, email="writer@example.com", name="Wren Writer", password=PASSWORD)


def _post(title: str) -> Post:
    db.session.expire_all()
    found = db.session.scalar(select(Post.id).where(Post.title == title))
    assert found is not None
    return load_post(db.session, found)


def _fields(**changes: Any) -> dict[str, Any]:
    return {
        "title": "First light",
        "markdown": "Hello *world*.",
        "tags": "Flask, Notes",
        "action": "save",
        **changes,
    }


def _edit(client: FlaskClient, post: Post, page: str | None = None, **changes: Any) -> Any:
    """Save the editor's form as it was when ``page`` (default: now) was loaded."""
    page = page or client.get(f"/admin/posts/{post.id}/").text
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page)
    assert version
    data = {"csrf_token": csrf_token(page), "version": version.group(1), **_fields(**changes)}
    return client.post(f"/admin/posts/{post.id}/", data=data)


def test_an_author_writes_a_tagged_draft_then_publishes_it(
    client: FlaskClient, writer: User
) -> None:
    sign_in(client, writer.email)
    response = post_form(client, "/admin/posts/new", _fields())
    assert response.status_code == 302
    post = _post("First light")
    assert (post.status, post.slug, [t.name for t in post.tags]) == (
        PostStatus.DRAFT,
        "first-light",
        ["Flask", "Notes"],
    )
    assert "<em>world</em>" in post.html
    assert _edit(client, post, action="publish", tags="Flask, New tag").status_code == 302
    post = _post("First light")
    assert post.status is PostStatus.PUBLISHED
    assert [t.name for t in post.tags] == ["Flask", "New tag"]


def test_the_second_of_two_people_editing_a_post_is_refused_clearly(
    client: FlaskClient, writer: User, make_user: Any
) -> None:
    editor = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    sign_in(client, writer.email)
    post_form(client, "/admin/posts/new", _fields())
    post = _post("First light")
    other = separate_client(client.application)
    sign_in(other, editor.email)
    mine = client.get(f"/admin/posts/{post.id}/").text
    theirs = other.get(f"/admin/posts/{post.id}/").text
    assert _edit(other, post, theirs, markdown="The editor's version.").status_code == 302
    refused = _edit(client, post, mine, markdown="My version.")
    assert refused.status_code == 409
    assert "Someone else saved" in refused.text
    assert "My version." in refused.text  # what I typed is still on the page to copy
    assert _post("First light").markdown == "The editor's version."


def test_revisions_are_kept_compared_and_restored(client: FlaskClient, writer: User) -> None:
    sign_in(client, writer.email)
    post_form(client, "/admin/posts/new", _fields(markdown="one\ntwo"))
    post = _post("First light")
    _edit(client, post, markdown="one\nthree", title="Second light")
    post = _post("Second light")
    history = db.session.scalars(
        select(PostRevision).where(PostRevision.post_id == post.id).order_by(PostRevision.id)
    ).all()
    assert [r.title for r in history] == ["First light", "Second light"]
    listing = client.get(f"/admin/posts/{post.id}/revisions/")
    assert "Restore version 1" in listing.text
    compared = client.get(f"/admin/posts/{post.id}/revisions/{history[0].id}/")
    assert "-two" in compared.text
    assert "+three" in compared.text
    restored = client.post(
        f"/admin/posts/{post.id}/revisions/{history[0].id}/restore",
        data={"csrf_token": csrf_token(listing.text), "version": str(post.version)},
    )
    assert restored.status_code == 302
    post = _post("First light")
    assert (post.markdown, post.slug) == ("one\ntwo", "first-light")
    assert (
        db.session.scalar(
            select(func.count()).select_from(PostRevision).where(PostRevision.post_id == post.id)
        )
        == 3
    )


def test_a_contributor_cannot_publish_or_schedule_even_by_hand(
    client: FlaskClient, make_user: Any
) -> None:
    cora = make_user(Role.CONTRIBUTOR, email="cora@example.com", password=PASSWORD)
    sign_in(client, cora.email)
    editor_page = client.get("/admin/posts/new").text
    assert "Save draft" in editor_page
    assert "Publish only" not in editor_page
    assert "Publish and email" not in editor_page
    for action in ("publish", "publish_email"):
        refused = post_form(client, "/admin/posts/new", _fields(action=action))
        assert refused.status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0
    post_form(client, "/admin/posts/new", _fields())
    post = _post("First light")
    refused = _edit(client, post, action="schedule", publish_at="2099-01-01T09:00")
    assert refused.status_code == 403
    assert _post("First light").status is PostStatus.DRAFT


def test_a_time_entered_in_the_sites_zone_is_stored_in_utc_and_published_once(
    app: Flask, client: FlaskClient, writer: User
) -> None:
    update_site_settings(
        db.session,
        actor=OPERATOR,
        now=NOW,
        title="Blog",
        description="",
        timezone="Europe/Paris",
        posts_per_page=10,
    )
    db.session.commit()
    sign_in(client, writer.email)
    response = post_form(
        client, "/admin/posts/new", _fields(action="schedule", publish_at="2099-07-01T09:00")
    )
    assert response.status_code == 302
    post = _post("First light")
    assert post.status is PostStatus.SCHEDULED
    assert post.published_at == datetime(2099, 7, 1, 7, 0, tzinfo=UTC)  # Paris is UTC+2 then
    page = client.get(f"/admin/posts/{post.id}/").text
    assert "2099-07-01 09:00" in page
    assert 'value="2099-07-01T09:00"' in page


def test_two_overlapping_scheduler_tasks_publish_a_due_post_once(
    app: Flask, make_post: Any
) -> None:
    # NOW lies in the past, so this post is overdue, as after an hour of scheduler downtime.
    post = make_post("Overdue", status=PostStatus.SCHEDULED, published_at=NOW.replace(hour=13))
    results: list[int] = []
    task = app.extensions["celery"].tasks["broadsheet.publish_due_posts"]  # on this app
    threads = [threading.Thread(target=lambda: results.append(task())) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == [0, 1]
    assert _post("Overdue").status is PostStatus.PUBLISHED
    assert post.id not in [
        p.id for p in db.session.scalars(select(Post).where(Post.status == PostStatus.SCHEDULED))
    ]


def test_the_post_list_filters_by_status_tag_author_and_title(
    client: FlaskClient, writer: User, make_user: Any, make_post: Any
) -> None:
    other = make_user(Role.AUTHOR, email="o@example.com", name="Other Person")
    make_post("Flask tips", tags=["Flask"], authors=[writer])
    make_post("Draft about SQL", tags=["SQL"], authors=[writer], status=PostStatus.DRAFT)
    make_post("Someone else's post", tags=["Flask"], authors=[other])
    editor = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    sign_in(client, editor.email)

    def titles(query: str) -> set[str]:
        page = client.get(f"/admin/posts/?{query}").text
        return {t for t in ("Flask tips", "Draft about SQL", "Someone else") if t in page}

    assert titles("") == {"Flask tips", "Draft about SQL", "Someone else"}
    assert titles("status=draft") == {"Draft about SQL"}
    assert titles("tag=flask") == {"Flask tips", "Someone else"}
    assert titles(f"author={other.id}") == {"Someone else"}
    assert titles("q=TIPS") == {"Flask tips"}
    assert titles("q=100%25") == set()
    # An author sees only their own posts.
    mine = separate_client(client.application)
    sign_in(mine, writer.email)
    assert "Someone else" not in mine.get("/admin/posts/").text


def test_preview_renders_on_the_server_sanitised_and_saves_nothing(
    client: FlaskClient, writer: User
) -> None:
    sign_in(client, writer.email)
    response = post_form(
        client,
        "/admin/preview",
        {"title": "Draft", "markdown": "**bold** <script>alert(1)</script>"},
        form_at="/admin/posts/new",
    )
    assert response.status_code == 200
    assert "<strong>bold</strong>" in response.text
    assert "<script>alert" not in response.text
    assert db.session.scalar(select(func.count()).select_from(Post)) == 0


def test_an_editor_publishes_with_email_or_without(
    app: Flask, client: FlaskClient, make_user: Any
) -> None:
    from broadsheet.newsletter.sending import send_for_post
    from tests.newsletter import make_subscriber

    make_subscriber("reader@example.com")
    ed = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    sign_in(client, ed.email)
    dashboard = client.get("/admin/").text
    assert "<strong>1</strong> subscribers" in dashboard
    post_form(client, "/admin/posts/new", _fields(title="Quiet one", action="publish"))
    quiet = _post("Quiet one")
    assert quiet.status is PostStatus.PUBLISHED
    assert send_for_post(db.session, quiet.id) is None
    review = post_form(
        client, "/admin/posts/new", _fields(title="Loud one", action="publish_email")
    )
    loud = _post("Loud one")
    assert loud.status is PostStatus.DRAFT  # saved, and nothing sent before the review
    assert send_for_post(db.session, loud.id) is None
    page = client.get(review.headers["Location"]).text
    assert "This will email <strong>1</strong> subscriber:" in page
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    confirm = {"csrf_token": csrf_token(page), "version": version.group(1), "at": ""}
    client.post(f"/admin/posts/{loud.id}/publish/", data=confirm)
    loud = _post("Loud one")
    assert loud.status is PostStatus.PUBLISHED
    send = send_for_post(db.session, loud.id)
    assert send is not None
    assert send.recipients == 1


def test_the_editor_and_the_revisions_list_show_the_same_version(
    client: FlaskClient, writer: User
) -> None:
    sign_in(client, writer.email)
    post_form(client, "/admin/posts/new", _fields())
    post = _post("First light")
    _edit(client, post, markdown="Second draft.")
    _edit(client, _post("First light"), markdown="Second draft.", action="publish")
    editor = client.get(f"/admin/posts/{post.id}/").text
    listing = client.get(f"/admin/posts/{post.id}/revisions/").text
    shown = re.search(r"version (\d+)\s", editor)
    current = re.search(r"<td>(\d+) \(current\)</td>", listing)
    assert shown
    assert current
    assert shown.group(1) == current.group(1) == "2"
