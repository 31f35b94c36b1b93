"""Old addresses keep working: the redirects table, staff editing it, and slug changes."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.redirects import (
    Redirect,
    RedirectSource,
    normalise_path,
    point_at_path,
    point_at_post,
)
from broadsheet.content.services import load_post, update_post
from broadsheet.extensions import db
from tests.conftest import NOW
from tests.staff import PASSWORD, post_form, separate_client, sign_in


def _rename(post_id: int, slug: str) -> None:
    post = load_post(db.session, post_id)
    update_post(db.session, post, actor=OPERATOR, expected_version=post.version, now=NOW,
                title=post.title, markdown=post.markdown, tags=[t.name for t in post.tags],
                slug=slug)  # fmt: skip
    db.session.commit()


def test_a_renamed_post_answers_at_its_old_address_with_a_301(
    client: FlaskClient, make_post: Any
) -> None:
    post = make_post("Moving day")
    assert client.get("/moving-day/").status_code == 200  # cached under its old address
    _rename(post.id, "we-moved")
    old = client.get("/moving-day/")
    assert old.status_code == 301
    assert old.headers["Location"].endswith("/we-moved/")
    assert client.get("/we-moved/").status_code == 200
    # Renamed again: both earlier addresses lead straight to the newest, without a chain.
    _rename(post.id, "moved-again")
    for path in ("/moving-day/", "/we-moved/"):
        response = client.get(path)
        assert response.status_code == 301, path
        assert response.headers["Location"].endswith("/moved-again/")
    # Back to a former slug: the post lives there again, and no redirect loops.
    _rename(post.id, "we-moved")
    assert client.get("/we-moved/").status_code == 200
    assert client.get("/moved-again/").headers["Location"].endswith("/we-moved/")


def test_renaming_a_draft_adds_no_redirect(make_post: Any) -> None:
    draft = make_post("Unseen", status="draft")
    _rename(draft.id, "still-unseen")
    assert db.session.scalar(select(func.count()).select_from(Redirect)) == 0


def test_a_live_page_wins_over_a_redirect_and_unknown_paths_still_404(
    client: FlaskClient, make_post: Any
) -> None:
    make_post("Here to stay")
    point_at_path(db.session, "/here-to-stay/", "/elsewhere/", source=RedirectSource.STAFF,
                  now=NOW)  # fmt: skip
    db.session.commit()
    assert client.get("/here-to-stay/").status_code == 200
    assert client.get("/nothing-here/").status_code == 404


def test_old_wordpress_query_links_redirect_and_unknown_ones_are_not_the_home_page(
    client: FlaskClient, make_post: Any
) -> None:
    post = make_post("From WordPress")
    assert client.get("/").status_code == 200  # the home page, now in the page cache
    point_at_post(db.session, "/?p=123", post.id, source=RedirectSource.IMPORT, now=NOW)
    point_at_path(db.session, "/?cat=7", "/tag/news/", source=RedirectSource.IMPORT, now=NOW)
    point_at_post(db.session, "/2019/05/from-wordpress/", post.id, source=RedirectSource.IMPORT,
                  now=NOW)  # fmt: skip
    db.session.commit()
    moved = client.get("/?p=123")
    assert moved.status_code == 301
    assert moved.headers["Location"].endswith("/from-wordpress/")
    assert client.get("/?cat=7&utm_source=x").headers["Location"].endswith("/tag/news/")
    assert client.get("/2019/05/from-wordpress/").headers["Location"].endswith("/from-wordpress/")
    assert client.get("/?p=999").status_code == 404
    assert client.get("/?utm_source=x").status_code == 200


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("/2019/05/slug/", "/2019/05/slug"),
        ("https://old.example.com/2019/05/slug/", "/2019/05/slug"),
        ("/?p=12&utm=x", "/?p=12"),
        ("/caf%C3%A9/", "/café"),
        ("/", "/"),
    ],
)
def test_old_addresses_are_kept_in_one_form(raw: str, stored: str) -> None:
    assert normalise_path(raw) == stored


@pytest.fixture
def staff_client(app: Flask) -> FlaskClient:
    return separate_client(app)


def test_an_admin_adds_and_deletes_redirects_and_bad_ones_are_refused(
    staff_client: FlaskClient, make_user: Any, client: FlaskClient
) -> None:
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(staff_client, admin.email)
    added = post_form(staff_client, "/admin/redirects/",
                      {"old_path": "/old-about/", "target": "/about/"})  # fmt: skip
    assert added.status_code == 302
    assert client.get("/old-about/").headers["Location"].endswith("/about/")
    for bad, message in [
        ({"old_path": "old", "target": "/x/"}, "must be a path on this site"),
        ({"old_path": "/a/", "target": "javascript:alert(1)"}, "must be a path on this site"),
        ({"old_path": "/a/", "target": "/a"}, "must differ"),
        ({"old_path": "/old-about", "target": "/x/"}, "already redirects"),
        ({"old_path": "/", "target": "/x/"}, "home page"),
    ]:
        refused = post_form(staff_client, "/admin/redirects/", bad)
        assert refused.status_code == 422, bad
        assert message in refused.text
    assert db.session.scalar(select(func.count()).select_from(Redirect)) == 1
    row = db.session.scalars(select(Redirect)).one()
    page = staff_client.get("/admin/redirects/")
    assert "/old-about" in page.text
    deleted = post_form(staff_client, f"/admin/redirects/{row.id}/delete", {},
                        form_at="/admin/redirects/")  # fmt: skip
    assert deleted.status_code == 302
    assert client.get("/old-about/").status_code == 404


def test_editors_cannot_manage_redirects(staff_client: FlaskClient, make_user: Any) -> None:
    editor = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    sign_in(staff_client, editor.email)
    assert staff_client.get("/admin/redirects/").status_code == 403
