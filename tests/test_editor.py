"""The editor's live work through its door: the live preview, autosaved drafts, save conflicts.

Each test runs on SQLite and on PostgreSQL; the requests are the ones editor.js sends (the
editor's form fields, its CSRF token, ``post_id`` and ``automatic``).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from broadsheet.accounts.models import Role, User
from broadsheet.content import editing
from broadsheet.content.models import Post, PostRevision, PostStatus
from broadsheet.content.services import load_post
from broadsheet.extensions import db
from tests.conftest import NOW
from tests.staff import PASSWORD, csrf_token, separate_client, sign_in


@pytest.fixture
def writer(make_user: Any) -> User:
    return make_user(Role.AUTHOR, email="wren@example.com", name="Wren Writer", password=PASSWORD)


def _signed_in(app: Flask, email: str) -> FlaskClient:
    client = separate_client(app)
    sign_in(client, email)
    return client


def _editor_page(client: FlaskClient, post_id: int | None = None) -> str:
    return client.get(f"/admin/posts/{post_id}/" if post_id else "/admin/posts/new").text


def _version(page: str) -> str:
    found = re.search(r'name="version" type="hidden" value="(\d*)"', page)
    assert found
    return found.group(1)


def _at_version(page: str, version: int) -> str:
    """The editor's page as editor.js leaves it once a save answered ``version``."""
    return re.sub(
        r'name="version" type="hidden" value="\d*"',
        f'name="version" type="hidden" value="{version}"',
        page,
    )


def _send(client: FlaskClient, url: str, page: str, post_id: int | None, **fields: Any) -> Any:
    """POST what editor.js posts: the form as ``page`` held it, changed by ``fields``."""
    data = {
        "csrf_token": csrf_token(page),
        "post_id": str(post_id or ""),
        "version": _version(page),
        "title": "Night train",
        "markdown": "The first line.",
        "tags": "Travel",
        "email_on_publish": "y",
        **fields,
    }
    return client.post(url, data=data)


def _autosave(client: FlaskClient, page: str, post_id: int | None = None, **fields: Any) -> Any:
    return _send(client, "/admin/editor/save", page, post_id, automatic="1", **fields)


def _post(post_id: int) -> Post:
    db.session.expire_all()
    return load_post(db.session, post_id)


def _revisions(post_id: int) -> list[PostRevision]:
    db.session.expire_all()
    query = select(PostRevision).where(PostRevision.post_id == post_id).order_by(PostRevision.id)
    return list(db.session.scalars(query))


def _post_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Post)) or 0


def test_the_live_preview_is_the_published_rendering_sanitised_with_its_counts(
    app: Flask, writer: User
) -> None:
    client = _signed_in(app, writer.email)
    markdown = "Some **bold** words <script>alert(1)</script> <img src=x onerror=alert(2)>"
    answer = _send(client, "/admin/editor/preview", _editor_page(client), None, markdown=markdown)
    assert answer.status_code == 200
    shown = answer.get_json()
    assert "<strong>bold</strong>" in shown["html"]
    assert "<script" not in shown["html"]
    assert "onerror" not in shown["html"]
    assert (shown["words"], shown["minutes"]) == (len(markdown.split()), 1)
    assert _post_count() == 0  # a preview saves nothing


def test_the_editor_shows_the_word_count_and_reading_time(
    app: Flask, writer: User, make_post: Any
) -> None:
    post = make_post("Long read", markdown="word " * 700, authors=[writer])
    page = _editor_page(_signed_in(app, writer.email), post.id)
    assert "700 words · 3 min read" in page


def test_the_live_preview_refuses_someone_who_may_not_edit_the_post(
    app: Flask, writer: User, make_user: Any, make_post: Any
) -> None:
    other = make_user(Role.AUTHOR, email="otto@example.com", password=PASSWORD)
    theirs = make_post("Otto's post", authors=[other], status=PostStatus.DRAFT)
    client = _signed_in(app, writer.email)
    page = _editor_page(client)
    refused = _send(client, "/admin/editor/preview", page, theirs.id, markdown="peek")
    assert refused.status_code == 403
    assert "html" not in refused.get_json()
    # The preview without JavaScript asks the same service.
    framed = client.post(
        f"/admin/preview?post={theirs.id}",
        data={"csrf_token": csrf_token(page), "title": "x", "markdown": "peek"},
    )
    assert framed.status_code == 403
    editor = _signed_in(app, make_user(Role.EDITOR, password=PASSWORD).email)
    allowed = _send(editor, "/admin/editor/preview", _editor_page(editor), theirs.id)
    assert allowed.status_code == 200


def test_the_live_preview_and_the_save_need_the_forms_csrf_token(app: Flask, writer: User) -> None:
    client = _signed_in(app, writer.email)
    for url in ("/admin/editor/preview", "/admin/editor/save"):
        answer = client.post(url, data={"title": "Forged", "markdown": "x", "automatic": "1"})
        assert answer.status_code == 400
    assert _post_count() == 0


def test_the_first_autosave_creates_the_draft_and_the_next_ones_update_it(
    app: Flask, writer: User
) -> None:
    client = _signed_in(app, writer.email)
    page = _editor_page(client)
    # Not even a title yet: the text is kept all the same.
    first = _autosave(client, page, title="", markdown="A thought before its title.")
    assert first.status_code == 200
    saved = first.get_json()
    post = _post(saved["post_id"])
    assert (post.title, post.status, post.markdown) == (
        editing.UNTITLED,
        PostStatus.DRAFT,
        "A thought before its title.",
    )
    assert saved["edit_url"] == f"/admin/posts/{post.id}/"
    assert [a.email for a in post.authors] == [writer.email]
    page = _at_version(page, saved["version"])
    second = _autosave(client, page, post.id, markdown="A thought, then more.")
    assert second.status_code == 200
    post = _post(post.id)
    assert (post.title, post.markdown, post.version) == (
        "Night train",
        "A thought, then more.",
        second.get_json()["version"],
    )
    assert "<p>A thought, then more.</p>" in post.html
    # The revisions list says what saved it (and keeps one per ten minutes: the test below).
    latest = _revisions(post.id)[-1]
    assert (latest.note, latest.markdown) == (editing.AUTOSAVE_NOTE, "A thought, then more.")


def test_autosaves_in_other_ten_minutes_or_after_a_save_keep_their_own_revisions(
    app: Flask, writer: User
) -> None:
    fields = editing.EditorFields(title="Slow post", markdown="one", tags=[])

    def save(markdown: str, *, minutes: int, automatic: bool = True) -> Post:
        post = editing.save_from_editor(
            db.session,
            post_id,
            editing.EditorFields(title=fields.title, markdown=markdown, tags=[]),
            actor=writer,
            expected_version=_post(post_id).version,
            automatic=automatic,
            now=NOW + timedelta(minutes=minutes),
        )
        db.session.commit()
        return post

    post = editing.save_from_editor(
        db.session, None, fields, actor=writer, expected_version=0, automatic=True, now=NOW
    )
    db.session.commit()
    post_id = post.id
    save("one two", minutes=1)  # the same ten minutes: it replaces the previous autosave
    save("one two three", minutes=30)  # later on: a revision of its own
    save("one two three four", minutes=31, automatic=False)  # a save on purpose
    save("one two three four five", minutes=32)  # an autosave after it
    assert [(r.note, r.markdown) for r in _revisions(post_id)] == [
        (editing.AUTOSAVE_NOTE, "one two"),
        (editing.AUTOSAVE_NOTE, "one two three"),
        ("", "one two three four"),
        (editing.AUTOSAVE_NOTE, "one two three four five"),
    ]


def test_a_stale_autosave_is_refused_with_the_difference_and_the_writer_may_keep_theirs(
    app: Flask, writer: User, make_user: Any, make_post: Any
) -> None:
    post = make_post("Night train", markdown="Shared line.\nOld line.", authors=[writer],
                     status=PostStatus.DRAFT, tags=["Travel"])  # fmt: skip
    mine = _signed_in(app, writer.email)
    my_page = _editor_page(mine, post.id)
    editor = _signed_in(app, make_user(Role.EDITOR, password=PASSWORD).email)
    their_page = _editor_page(editor, post.id)
    assert (
        _autosave(editor, their_page, post.id, markdown="Shared line.\nTheir line.").status_code
        == 200
    )

    refused = _autosave(mine, my_page, post.id, markdown="Shared line.\nMy line.")
    assert refused.status_code == 409
    conflict = refused.get_json()
    assert "Someone else saved" in conflict["message"]
    assert conflict["saved"]["markdown"] == "Shared line.\nTheir line."
    assert conflict["version"] == _post(post.id).version
    [body] = [change for change in conflict["changes"] if change["field"] == "markdown"]
    assert "-Their line." in body["diff"]
    assert "+My line." in body["diff"]
    assert " Shared line." in body["diff"]
    assert [c["field"] for c in conflict["changes"]] == ["markdown"]  # nothing else differs
    assert _post(post.id).markdown == "Shared line.\nTheir line."  # nothing was written

    # Keeping mine is a save on purpose over the version just compared.
    my_page = _at_version(my_page, conflict["version"])
    kept = _send(mine, "/admin/editor/save", my_page, post.id,
                 markdown="Shared line.\nMy line.", automatic="0")  # fmt: skip
    assert kept.status_code == 200
    assert _post(post.id).markdown == "Shared line.\nMy line."


@pytest.mark.parametrize("status", [PostStatus.PUBLISHED, PostStatus.SCHEDULED])
def test_a_post_that_is_not_a_draft_is_never_autosaved_but_saves_on_purpose(
    app: Flask, writer: User, make_post: Any, status: PostStatus
) -> None:
    at = NOW if status is PostStatus.PUBLISHED else NOW.replace(year=2099)
    post = make_post("Out there", markdown="As readers see it.", authors=[writer],
                     status=status, published_at=at)  # fmt: skip
    client = _signed_in(app, writer.email)
    page = _editor_page(client, post.id)
    assert 'data-autosave="off"' in page
    refused = _autosave(client, page, post.id, markdown="Half a sent")
    assert refused.status_code == 422
    assert "not saved automatically" in refused.get_json()["fields"]["status"]
    assert _post(post.id).markdown == "As readers see it."
    # Ctrl-S: the writer saves on purpose; the post keeps its status.
    saved = _send(client, "/admin/editor/save", page, post.id, markdown="A whole sentence.")
    assert saved.status_code == 200
    post = _post(post.id)
    assert (post.markdown, post.status) == ("A whole sentence.", status)


def test_nobody_autosaves_a_post_they_may_not_edit(
    app: Flask, writer: User, make_user: Any, make_post: Any
) -> None:
    other = make_user(Role.AUTHOR, email="otto@example.com", password=PASSWORD)
    theirs = make_post("Otto's draft", markdown="Otto's words.", authors=[other],
                       status=PostStatus.DRAFT)  # fmt: skip
    client = _signed_in(app, writer.email)
    page = _at_version(_editor_page(client), theirs.version)
    refused = _autosave(client, page, theirs.id, markdown="Mine now.")
    assert refused.status_code == 403
    assert _post(theirs.id).markdown == "Otto's words."


def test_a_stale_save_of_the_whole_form_is_shown_beside_the_saved_version(
    app: Flask, writer: User, make_user: Any, make_post: Any
) -> None:
    post = make_post("Night train", markdown="Saved words.", authors=[writer], tags=["Travel"])
    mine = _signed_in(app, writer.email)
    my_page = _editor_page(mine, post.id)
    editor = _signed_in(app, make_user(Role.EDITOR, password=PASSWORD).email)
    their_page = _editor_page(editor, post.id)
    assert _send(editor, f"/admin/posts/{post.id}/", their_page, post.id,
                 markdown="Their words.", action="save").status_code == 302  # fmt: skip
    refused = _send(mine, f"/admin/posts/{post.id}/", my_page, post.id,
                    markdown="My words.", action="save")  # fmt: skip
    assert refused.status_code == 409
    assert "data-conflict" in refused.text  # editor.js then asks for the difference
    assert "My words." in refused.text
    compared = _send(mine, "/admin/editor/compare", my_page, post.id, markdown="My words.")
    assert compared.status_code == 409
    [body] = compared.get_json()["changes"]
    assert (body["diff"][-2], body["diff"][-1]) == ("-Their words.", "+My words.")
    current = _at_version(my_page, compared.get_json()["version"])
    assert _send(mine, "/admin/editor/compare", current, post.id).get_json() == {"changes": []}
    assert "data-conflict" not in _editor_page(mine, post.id)
    assert _post(post.id).markdown == "Their words."  # comparing writes nothing
