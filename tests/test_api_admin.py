"""The Admin API: tokens, role limits, If-Match versions, problems, size limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from broadsheet.accounts.models import ApiToken, Role
from broadsheet.accounts.services import create_token
from broadsheet.content.models import Post, PostRevision
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter.models import SubscriberStatus
from tests.conftest import NOW


@pytest.fixture
def token_for(make_user: Any) -> Any:
    """Headers carrying a live token for a new staff member of ``role``."""

    def make(role: Role, **fields: Any) -> dict[str, str]:
        user = make_user(role, **fields)
        _token, secret = create_token(db.session, user, label=f"{role} test", now=NOW)
        db.session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return make


def _create(client: FlaskClient, headers: dict[str, str], **fields: Any) -> Any:
    body = {"title": "From the API", "markdown": "Hello *there*.", "tags": ["API"], **fields}
    response = client.post("/api/v1/admin/posts/", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"]
    return body


@pytest.mark.parametrize(
    "authorization", [None, "Bearer", "Bearer bs_not-a-token", "Basic dXNlcjpwYXNz", "bs_x"]
)
def test_no_live_token_no_entry(client: FlaskClient, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/api/v1/admin/posts/", headers=headers)
    _problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_token_stops_working_and_use_is_recorded(
    client: FlaskClient, token_for: Any, runner: FlaskCliRunner
) -> None:
    headers = token_for(Role.EDITOR, email="ed@example.com")
    assert client.get("/api/v1/admin/posts/", headers=headers).status_code == 200
    token = db.session.scalars(select(ApiToken)).one()
    db.session.refresh(token)
    assert token.last_used_at is not None
    assert token.last_used_at > utcnow() - timedelta(minutes=1)
    listed = runner.invoke(args=["token", "list", "ed@example.com"])
    assert "editor test" in listed.output
    assert "live" in listed.output
    revoked = runner.invoke(args=["token", "revoke", str(token.id)])
    assert revoked.exit_code == 0, revoked.output
    _problem(client.get("/api/v1/admin/posts/", headers=headers), 401)


def test_a_draft_is_created_with_its_etag_and_address(client: FlaskClient, token_for: Any) -> None:
    headers = token_for(Role.AUTHOR, name="Amara Nwosu")
    response = _create(client, headers, tags=["API", "#internal"])
    post = response.get_json()["post"]
    assert post["status"] == "draft"
    assert post["published_at"] is None
    assert post["authors"][0]["name"] == "Amara Nwosu"
    assert [t["name"] for t in post["tags"]] == ["API", "#internal"]
    assert "<em>there</em>" in post["html"]
    assert response.headers["ETag"] == f'"post-{post["id"]}-v{post["version"]}"'
    assert response.headers["Location"].endswith(f"/api/v1/admin/posts/{post['id']}/")
    # Not public yet.
    assert client.get(f"/api/v1/posts/{post['id']}/").status_code == 404


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"markdown": "no title"}, {"title"}),
        ({"title": ""}, {"title"}),
        ({"title": "x", "colour": "red"}, {"colour"}),
        ({"title": "x", "tags": "not-a-list"}, {"tags"}),
        ({"title": "x", "featured": "maybe", "slug": ""}, {"featured", "slug"}),
        ({"title": "x", "slug": "admin"}, {"slug"}),
    ],
)
def test_bad_bodies_get_a_problem_naming_each_field_and_write_nothing(
    client: FlaskClient, token_for: Any, body: dict[str, Any], fields: set[str]
) -> None:
    response = client.post("/api/v1/admin/posts/", json=body, headers=token_for(Role.EDITOR))
    problem = _problem(response, 422)
    assert {error["field"] for error in problem["errors"]} == fields
    assert db.session.scalar(select(Post.id)) is None


def test_a_body_over_the_limit_is_refused(client: FlaskClient, token_for: Any) -> None:
    huge = {"title": "Big", "markdown": "x" * (1024 * 1024 + 1)}
    _problem(client.post("/api/v1/admin/posts/", json=huge, headers=token_for(Role.EDITOR)), 413)
    assert db.session.scalar(select(Post.id)) is None


def test_updates_need_the_version_they_edit_and_a_stale_one_gets_412(
    client: FlaskClient, token_for: Any
) -> None:
    alice = token_for(Role.EDITOR, email="alice@example.com")
    bob = token_for(Role.EDITOR, email="bob@example.com")
    created = _create(client, alice)
    url = f"/api/v1/admin/posts/{created.get_json()['post']['id']}/"
    etag = created.headers["ETag"]

    _problem(client.patch(url, json={"title": "No version"}, headers=alice), 428)
    first = client.patch(url, json={"title": "Alice's title"}, headers={**alice, "If-Match": etag})
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.headers["ETag"] != etag
    # Bob edits the version he read before Alice saved: refused, nothing lost.
    stale = client.patch(url, json={"markdown": "Bob's body"}, headers={**bob, "If-Match": etag})
    problem = _problem(stale, 412)
    assert "changed since you read it" in problem["detail"]
    assert stale.headers["ETag"] == first.headers["ETag"]
    now = client.get(url, headers=bob).get_json()["post"]
    assert now["title"] == "Alice's title"
    assert now["markdown"] == "Hello *there*."
    retried = client.patch(
        url, json={"markdown": "Bob's body"}, headers={**bob, "If-Match": first.headers["ETag"]}
    )
    assert retried.status_code == 200
    assert retried.get_json()["post"]["title"] == "Alice's title"
    assert len(db.session.scalars(select(PostRevision)).all()) == 3


def test_each_role_is_held_to_its_limits(client: FlaskClient, token_for: Any) -> None:
    contributor = token_for(Role.CONTRIBUTOR, email="c@example.com")
    author = token_for(Role.AUTHOR, email="a@example.com")
    editor = token_for(Role.EDITOR, email="e@example.com")

    draft = _create(client, contributor).get_json()["post"]
    publish = f"/api/v1/admin/posts/{draft['id']}/publish/"
    assert (
        "cannot publish"
        in _problem(client.post(publish, json={}, headers=contributor), 403)["detail"]
    )
    # Someone else's post is not an author's to touch, nor to see.
    _problem(client.get(f"/api/v1/admin/posts/{draft['id']}/", headers=author), 403)
    assert client.get("/api/v1/admin/posts/", headers=author).get_json()["posts"] == []
    _problem(client.get("/api/v1/admin/tags/", headers=contributor), 403)
    # An editor may publish anyone's post.
    published = client.post(publish, json={}, headers=editor)
    assert published.status_code == 200
    assert published.get_json()["post"]["status"] == "published"
    assert client.get(f"/api/v1/posts/{draft['id']}/").status_code == 200
    # An author publishes their own.
    own = _create(client, author).get_json()["post"]
    done = client.post(f"/api/v1/admin/posts/{own['id']}/publish/", json={}, headers=author)
    assert done.get_json()["post"]["status"] == "published"


def test_schedule_unpublish_and_delete(client: FlaskClient, token_for: Any) -> None:
    editor = token_for(Role.EDITOR)
    post = _create(client, editor).get_json()["post"]
    base = f"/api/v1/admin/posts/{post['id']}/"
    past = client.post(base + "schedule/", json={"publish_at": "2020-01-01T00:00:00Z"},
                       headers=editor)  # fmt: skip
    assert "publish_at" in [e["field"] for e in _problem(past, 422)["errors"]]
    later = (utcnow() + timedelta(hours=2)).isoformat()
    scheduled = client.post(base + "schedule/", json={"publish_at": later}, headers=editor)
    assert scheduled.get_json()["post"]["status"] == "scheduled"
    assert client.get(f"/api/v1/posts/{post['id']}/").status_code == 404
    client.post(base + "publish/", json={}, headers=editor)
    unpublished = client.post(base + "unpublish/", headers=editor)
    assert unpublished.get_json()["post"]["status"] == "draft"
    etag = unpublished.headers["ETag"]
    _problem(client.delete(base, headers={**editor, "If-Match": '"post-1-v999"'}), 412)
    assert client.delete(base, headers={**editor, "If-Match": etag}).status_code == 204
    _problem(client.get(base, headers=editor), 404)


def test_tags_are_renamed_described_and_merged(client: FlaskClient, token_for: Any) -> None:
    editor = token_for(Role.EDITOR)
    _create(client, editor, tags=["Flask", "flask-tips"])
    tags = {
        t["name"]: t for t in client.get("/api/v1/admin/tags/", headers=editor).get_json()["tags"]
    }
    renamed = client.patch(
        f"/api/v1/admin/tags/{tags['Flask']['id']}/",
        json={"name": "Flask framework", "description": "Posts about Flask."},
        headers=editor,
    )
    assert renamed.get_json()["tag"]["name"] == "Flask framework"
    assert renamed.get_json()["tag"]["description"] == "Posts about Flask."
    merged = client.post(
        f"/api/v1/admin/tags/{tags['flask-tips']['id']}/merge/",
        json={"into": tags["Flask"]["id"]},
        headers=editor,
    )
    assert merged.get_json()["tag"]["post_count"] == 1
    names = [
        t["name"] for t in client.get("/api/v1/admin/tags/", headers=editor).get_json()["tags"]
    ]
    assert names == ["Flask framework"]


def test_a_tag_description_has_one_limit_in_the_document_and_the_service(
    client: FlaskClient, token_for: Any
) -> None:
    document = client.get("/api/openapi.json").get_json()
    limit = document["components"]["schemas"]["TagPatch"]["properties"]["description"]["maxLength"]
    assert limit == 2000
    editor = token_for(Role.EDITOR)
    _create(client, editor, tags=["Flask"])
    (tag,) = client.get("/api/v1/admin/tags/", headers=editor).get_json()["tags"]
    url = f"/api/v1/admin/tags/{tag['id']}/"
    body = _problem(client.patch(url, json={"description": "x" * (limit + 1)}, headers=editor), 422)
    assert body["errors"][0]["field"] == "description"
    described = client.patch(url, json={"description": "x" * limit}, headers=editor)
    assert described.get_json()["tag"]["description"] == "x" * limit


def test_publishing_with_email_freezes_recipients_once_and_shows_progress(
    client: FlaskClient, token_for: Any
) -> None:
    from tests.newsletter import make_subscriber

    for number in range(3):
        make_subscriber(f"reader{number}@example.com")
    make_subscriber("flask-only@example.com", tags=["Flask"])
    make_subscriber("waiting@example.com", status=SubscriberStatus.PENDING)
    editor = token_for(Role.EDITOR)
    post = _create(client, editor, tags=["SQL"]).get_json()["post"]
    base = f"/api/v1/admin/posts/{post['id']}/"
    _problem(client.get(base + "send/", headers=editor), 404)  # not emailed yet

    assert client.post(base + "publish/", json={"email": True}, headers=editor).status_code == 200
    again = client.post(base + "publish/", json={"email": True}, headers=editor)
    assert again.status_code == 200
    progress = client.get(base + "send/", headers=editor).get_json()["send"]
    # Confirmed readers who want every post; not the Flask-only one, not the pending one.
    assert progress["recipients"] == 3
    assert progress["remaining"] == 3  # no worker runs in this test
    assert progress["status"] == "sending"

    cancelled = client.post(base + "send/cancel/", headers=editor).get_json()["send"]
    assert cancelled["status"] == "cancelled"
    assert cancelled["skipped"] == 3
    assert cancelled["remaining"] == 0
    _problem(client.post(base + "send/cancel/", headers=editor), 409)


def test_subscribers_are_for_admins(client: FlaskClient, token_for: Any) -> None:
    from tests.newsletter import make_subscriber

    make_subscriber("one@example.com", tags=["Flask"])
    make_subscriber("two@example.com", status=SubscriberStatus.UNSUBSCRIBED)
    _problem(client.get("/api/v1/admin/subscribers/", headers=token_for(Role.EDITOR)), 403)
    admin = token_for(Role.ADMIN)
    body = client.get("/api/v1/admin/subscribers/?status=confirmed", headers=admin).get_json()
    assert [(s["email"], s["tags"]) for s in body["subscribers"]] == [
        ("one@example.com", ["flask"])
    ]
    assert body["pagination"]["total"] == 1
    everyone = client.get("/api/v1/admin/subscribers/?search=two", headers=admin).get_json()
    assert [s["status"] for s in everyone["subscribers"]] == ["unsubscribed"]
