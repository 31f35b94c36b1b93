"""Staff manage subscribers and watch sends in the admin."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token
from broadsheet.content.models import PostStatus
from broadsheet.extensions import db
from broadsheet.newsletter import sending
from broadsheet.newsletter.models import SubscriberStatus
from broadsheet.newsletter.services import find_subscriber
from tests.conftest import NOW
from tests.newsletter import make_subscriber
from tests.staff import PASSWORD, csrf_token, separate_client, sign_in


def _admin_client(app: Flask, make_user: Any, role: Role = Role.ADMIN) -> Any:
    user = make_user(role, email=f"{role.value}@example.com", password=PASSWORD)
    client = separate_client(app)
    sign_in(client, user.email)
    return client


def test_admin_lists_searches_imports_and_exports_subscribers(app: Flask, make_user: Any) -> None:
    make_subscriber("ann@example.com", tags=["Python"])
    make_subscriber("bob@example.com", status=SubscriberStatus.PENDING)
    client = _admin_client(app, make_user)

    page = client.get("/admin/subscribers/?q=ann")
    assert page.status_code == 200
    assert "ann@example.com" in page.text
    assert "bob@example.com" not in page.text
    pending = client.get("/admin/subscribers/?status=pending").text
    assert "bob@example.com" in pending
    assert "ann@example.com" not in pending

    upload = "email,consent,status\ncat@example.com,signed up at the fair,confirmed\n"
    imported = client.post(
        "/admin/subscribers/import",
        data={"csrf_token": csrf_token(page.text), "file": (io.BytesIO(upload.encode()), "s.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "Imported 1 subscriber(s)" in imported.text
    cat = find_subscriber(db.session, "cat@example.com")
    assert cat is not None
    assert cat.status is SubscriberStatus.CONFIRMED

    exported = client.get("/admin/subscribers/export.csv")
    assert exported.mimetype == "text/csv"
    assert "ann@example.com,confirmed,Python," in exported.text
    assert "cat@example.com,confirmed,,signed up at the fair" in exported.text


def test_an_author_cannot_see_subscribers(app: Flask, make_user: Any) -> None:
    make_subscriber("ann@example.com")
    client = _admin_client(app, make_user, Role.AUTHOR)
    response = client.get("/admin/subscribers/")
    assert response.status_code == 403
    assert "ann@example.com" not in response.text


def test_staff_see_a_sends_progress_and_cancel_it(
    app: Flask, make_user: Any, make_post: Any
) -> None:
    for n in range(3):
        make_subscriber(f"r{n}@example.com")
    post = make_post("Going out", status=PostStatus.DRAFT)
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    assert send is not None
    client = _admin_client(app, make_user)

    assert "Going out" in client.get("/admin/sends/").text
    page = client.get(f"/admin/sends/{send.id}/")
    assert page.status_code == 200
    assert "<progress" in page.text
    numbers = client.get(f"/admin/sends/{send.id}/progress").json
    assert numbers == {
        "status": "sending", "recipients": 3, "sent": 0, "failed": 0, "skipped": 0,
        "remaining": 3, "percent": 0, "stop_reason": None,
    }  # fmt: skip
    client.post(f"/admin/sends/{send.id}/cancel", data={"csrf_token": csrf_token(page.text)})
    after = client.get(f"/admin/sends/{send.id}/progress").json
    assert (after["status"], after["skipped"], after["remaining"]) == ("cancelled", 3, 0)


@pytest.mark.parametrize(
    ("role", "writes_it", "sees"),
    [
        (Role.CONTRIBUTOR, False, False),
        (Role.AUTHOR, False, False),
        (Role.AUTHOR, True, True),
        (Role.EDITOR, False, True),
        (Role.ADMIN, False, True),
    ],
)
def test_the_admin_and_the_api_agree_on_who_sees_a_sends_progress(
    app: Flask, make_user: Any, make_post: Any, role: Role, writes_it: bool, sees: bool
) -> None:
    make_subscriber("r@example.com")
    staff = make_user(role, email="staff@example.com", password=PASSWORD)
    writer = staff if writes_it else make_user(Role.AUTHOR, email="writer@example.com")
    post = make_post("Going out", status=PostStatus.DRAFT, authors=[writer])
    send = sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    _token, secret = create_token(db.session, staff, label="test", now=NOW)
    db.session.commit()
    assert send is not None
    client = separate_client(app)
    sign_in(client, staff.email)

    api = client.get(
        f"/api/v1/admin/posts/{post.id}/send/", headers={"Authorization": f"Bearer {secret}"}
    )
    page = client.get(f"/admin/sends/{send.id}/")
    numbers = client.get(f"/admin/sends/{send.id}/progress")
    listed = "Going out" in client.get("/admin/sends/").text
    expected = 200 if sees else 403
    assert (api.status_code, page.status_code, numbers.status_code) == (expected,) * 3
    assert listed is sees
    if sees:
        assert api.json["send"]["recipients"] == numbers.json["recipients"] == 1


@pytest.mark.parametrize("role", [Role.CONTRIBUTOR, Role.EDITOR])
def test_staff_who_may_not_export_get_a_clean_refusal_not_a_broken_file(
    app: Flask, make_user: Any, role: Role
) -> None:
    make_subscriber("ann@example.com")
    client = _admin_client(app, make_user, role)
    response = client.get("/admin/subscribers/export.csv")
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert "cannot manage subscribers" in response.text
    assert "ann@example.com" not in response.text
