"""Tags, staff and site settings, managed through the admin."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from broadsheet.accounts.models import Role, User
from broadsheet.content.models import Post, PostTag, Tag
from broadsheet.content.services import load_post
from broadsheet.extensions import db
from broadsheet.settings.services import site_settings
from tests.staff import PASSWORD, post_form, separate_client, sign_in


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return separate_client(app)


def _tag(name: str) -> Tag | None:
    db.session.expire_all()
    return db.session.scalar(select(Tag).where(Tag.name == name))


def test_an_editor_renames_describes_and_merges_tags(
    client: FlaskClient, make_user: Any, make_post: Any
) -> None:
    both = make_post("Both", tags=["py", "Python"])
    only_py = make_post("Only py", tags=["py"])
    editor = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    sign_in(client, editor.email)
    python, py = _tag("Python"), _tag("py")
    assert python
    assert py
    url = f"/admin/tags/{python.id}/"
    saved = post_form(client, url, {"name": "Python 3", "description": "Snakes, mostly."})
    assert saved.status_code == 302
    renamed = _tag("Python 3")
    assert renamed
    assert (renamed.slug, renamed.description) == ("python-3", "Snakes, mostly.")
    clash = post_form(client, url, {"name": "PY", "description": ""})
    assert clash.status_code == 409
    assert "merge the two tags instead" in clash.text
    merged = post_form(
        client,
        f"/admin/tags/{py.id}/merge",
        {"merge-target": python.id},
        form_at=f"/admin/tags/{py.id}/",
    )
    assert merged.status_code == 302
    assert _tag("py") is None
    assert [t.name for t in load_post(db.session, both.id).tags] == ["Python 3"]
    assert [t.name for t in load_post(db.session, only_py.id).tags] == ["Python 3"]
    links = db.session.scalars(select(PostTag).where(PostTag.tag_id == python.id)).all()
    assert len(links) == 2
    assert load_post(db.session, only_py.id).version == 2  # open editors must reload


def test_authors_cannot_manage_tags_staff_or_settings(client: FlaskClient, make_user: Any) -> None:
    author = make_user(Role.AUTHOR, email="a@example.com", password=PASSWORD)
    sign_in(client, author.email)
    for url in ("/admin/tags/", "/admin/staff/", "/admin/settings/"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "cannot" in response.text


def test_an_admin_adds_staff_but_cannot_make_an_owner_or_touch_the_owner(
    client: FlaskClient, make_user: Any
) -> None:
    owner = make_user(Role.OWNER, email="owner@example.com", password=PASSWORD)
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(client, admin.email)
    added = post_form(
        client,
        "/admin/staff/",
        {"email": "New@Example.com", "name": "Newt", "role": "editor", "password": PASSWORD},
    )
    assert added.status_code == 302
    newt = db.session.scalar(select(User).where(User.email == "new@example.com"))
    assert newt is not None
    assert newt.role is Role.EDITOR
    as_owner = post_form(client, "/admin/staff/", {"email": "x@example.com", "role": "owner"})
    assert as_owner.status_code == 422
    demote = post_form(client, f"/admin/staff/{owner.id}/", {"role": "author"})
    assert demote.status_code == 200
    assert "cannot make a owner" in demote.text or "cannot" in demote.text
    db.session.expire_all()
    assert db.session.get(User, owner.id).role is Role.OWNER  # type: ignore[union-attr]


def test_the_owner_hands_ownership_on_and_becomes_an_admin(
    client: FlaskClient, make_user: Any
) -> None:
    owner = make_user(Role.OWNER, email="owner@example.com", password=PASSWORD)
    heir = make_user(Role.EDITOR, email="heir@example.com", password=PASSWORD)
    sign_in(client, owner.email)
    response = post_form(
        client, f"/admin/staff/{heir.id}/ownership", {}, form_at=f"/admin/staff/{heir.id}/"
    )
    assert response.status_code == 302
    db.session.expire_all()
    assert (db.session.get(User, heir.id).role, db.session.get(User, owner.id).role) == (  # type: ignore[union-attr]
        Role.OWNER,
        Role.ADMIN,
    )


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "is not a time zone name"),
        ({"posts_per_page": "0"}, "must be between 1 and 100"),
        ({"title": "x" * 201}, "must be 1 to 200 characters"),
    ],
)
def test_site_settings_refuse_bad_values_with_a_clear_message(
    client: FlaskClient, make_user: Any, fields: dict[str, str], bad: str
) -> None:
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(client, admin.email)
    good = {"title": "Notes", "description": "", "timezone": "Europe/Paris", "posts_per_page": "5"}
    response = post_form(client, "/admin/settings/", {**good, **fields})
    assert response.status_code == 422
    assert bad in response.text
    assert site_settings(db.session).title == "Broadsheet"  # nothing was saved


def test_site_settings_are_saved_and_default_to_the_config(
    client: FlaskClient, make_user: Any
) -> None:
    assert site_settings(db.session).posts_per_page == 10
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(client, admin.email)
    saved = post_form(
        client,
        "/admin/settings/",
        {
            "title": "Notes",
            "description": "Short.",
            "timezone": "Europe/Paris",
            "posts_per_page": "5",
        },
    )
    assert saved.status_code == 302
    db.session.expire_all()
    settings = site_settings(db.session)
    assert (settings.title, settings.timezone, settings.posts_per_page) == (
        "Notes",
        "Europe/Paris",
        5,
    )
    assert Post  # the admin list still loads with the new settings
    assert client.get("/admin/posts/").status_code == 200


def test_adding_staff_asks_for_a_display_name_and_falls_back_to_the_local_part(
    client: FlaskClient, make_user: Any
) -> None:
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(client, admin.email)
    form = client.get("/admin/staff/").text
    assert ">Display name<" in form
    assert "Shown in bylines" in form
    added = post_form(client, "/admin/staff/", {"email": "kim.ode@example.com", "role": "author"})
    assert added.status_code == 302
    kim = db.session.scalar(select(User).where(User.email == "kim.ode@example.com"))
    assert kim is not None
    assert kim.display_name == "kim.ode"
