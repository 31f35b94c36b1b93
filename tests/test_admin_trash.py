"""Deleting in the admin: a confirmation, the trash, restoring, and removal after 30 days."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from broadsheet.accounts.models import Role
from broadsheet.content.models import Post, PostRevision, PostStatus
from broadsheet.content.trash import TRASH_DAYS
from broadsheet.extensions import db, utcnow
from tests.conftest import NOW
from tests.staff import PASSWORD, post_form, separate_client, sign_in


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return separate_client(app)


def _reader_sees(app: Flask, slug: str) -> dict[str, bool]:
    reader = separate_client(app)
    return {
        "page": reader.get(f"/{slug}/").status_code == 200,
        "home": f"/{slug}/" in reader.get("/").text,
        "feed": f"/{slug}/" in reader.get("/feed/").text,
        "sitemap": f"/{slug}/"
        in "".join(reader.get(path).text for path in ("/sitemap.xml", "/sitemap-posts.xml")),
        "api": reader.get(f"/api/v1/posts/slug/{slug}/").status_code == 200,
    }


def _count(model: Any, *where: Any) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_deleting_asks_first_then_trashes_and_restore_brings_the_post_back(
    app: Flask, client: FlaskClient, make_user: Any, make_post: Any
) -> None:
    editor = make_user(Role.EDITOR, email="eda@example.com", password=PASSWORD)
    post = make_post("Going away", published_at=NOW - timedelta(days=1))
    assert all(_reader_sees(app, post.slug).values())
    sign_in(client, editor.email)

    editor_page = client.get(f"/admin/posts/{post.id}/").text
    assert f'href="/admin/posts/{post.id}/delete"' in editor_page
    asked = client.get(f"/admin/posts/{post.id}/delete")
    assert asked.status_code == 200
    assert "Move to trash" in asked.text
    assert "30 days" in asked.text
    assert all(_reader_sees(app, post.slug).values())  # asking deleted nothing

    stale = post_form(client, f"/admin/posts/{post.id}/delete", {"version": "0"})
    assert stale.status_code == 302
    assert _count(Post, Post.deleted_at.is_not(None)) == 0  # a stale confirmation changes nothing
    trashed = post_form(client, f"/admin/posts/{post.id}/delete", {"version": str(post.version)})
    assert trashed.status_code == 302
    assert not any(_reader_sees(app, post.slug).values())
    client.get("/admin/trash/")  # shows the flash message
    assert f'href="/admin/posts/{post.id}/"' not in client.get("/admin/posts/").text
    assert f'href="/admin/posts/{post.id}/"' not in client.get("/admin/").text
    assert client.get(f"/admin/posts/{post.id}/").status_code == 404
    listing = client.get("/admin/trash/")
    assert "Restore “Going away”" in listing.text

    restored = post_form(client, f"/admin/trash/{post.id}/restore", {}, form_at="/admin/trash/")
    assert restored.status_code == 302
    assert all(_reader_sees(app, post.slug).values())
    client.get(f"/admin/posts/{post.id}/")  # shows the flash message
    assert f'href="/admin/posts/{post.id}/"' in client.get("/admin/posts/").text
    assert "Going away" not in client.get("/admin/trash/").text


def test_a_contributor_trashes_only_their_own_drafts(
    client: FlaskClient, make_user: Any, make_post: Any
) -> None:
    cora = make_user(Role.CONTRIBUTOR, email="cora@example.com", password=PASSWORD)
    draft = make_post("Scratch", authors=[cora], status=PostStatus.DRAFT)
    public = make_post("Out there", authors=[cora])
    someone_elses = make_post("Not mine", status=PostStatus.DRAFT)
    sign_in(client, cora.email)
    assert "/delete" not in client.get(f"/admin/posts/{public.id}/").text
    assert client.get(f"/admin/posts/{public.id}/delete").status_code == 403
    refused = post_form(
        client, f"/admin/posts/{public.id}/delete", {"version": str(public.version)},
        form_at=f"/admin/posts/{public.id}/",
    )  # fmt: skip
    assert refused.status_code == 403
    assert client.get(f"/admin/posts/{someone_elses.id}/delete").status_code == 403
    assert _count(Post, Post.deleted_at.is_not(None)) == 0
    done = post_form(client, f"/admin/posts/{draft.id}/delete", {"version": str(draft.version)})
    assert done.status_code == 302
    assert _count(Post, Post.deleted_at.is_not(None)) == 1
    assert "Scratch" in client.get("/admin/trash/").text


def test_the_beat_empties_the_trash_for_good_after_thirty_days(
    app: Flask, client: FlaskClient, make_user: Any, make_post: Any
) -> None:
    editor = make_user(Role.EDITOR, email="eda@example.com", password=PASSWORD)
    old = make_post("Old scratch", status=PostStatus.DRAFT)
    recent = make_post("Recent scratch", status=PostStatus.DRAFT)
    sign_in(client, editor.email)
    for post in (old, recent):
        post_form(client, f"/admin/posts/{post.id}/delete", {"version": str(post.version)})
    old_id, recent_id = old.id, recent.id
    db.session.expire_all()
    now = utcnow()
    for post_id, age in (
        (old_id, timedelta(days=TRASH_DAYS, minutes=1)),
        (recent_id, timedelta(days=TRASH_DAYS - 1)),
    ):
        db.session.execute(update(Post).where(Post.id == post_id).values(deleted_at=now - age))
    db.session.commit()
    beat = app.config["CELERY"]["beat_schedule"]["empty-trash"]
    assert beat == {"task": "broadsheet.empty_trash", "schedule": 3600.0}
    task = app.extensions["celery"].tasks[beat["task"]]  # on this app
    assert task() == 1
    assert _count(Post, Post.id == old_id) == 0
    assert _count(PostRevision, PostRevision.post_id == old_id) == 0
    assert _count(Post, Post.id == recent_id) == 1
    assert "Recent scratch" in client.get("/admin/trash/").text
