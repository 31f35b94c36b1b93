"""The Content API: what integrators read, how they page, and how errors look."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from broadsheet.content.models import PostKind, PostStatus
from broadsheet.content.services import publish_due_posts
from broadsheet.extensions import db
from tests.conftest import NOW


@pytest.fixture
def blog(make_post: Any, make_user: Any, author: Any) -> dict[str, Any]:
    """A small site: four public posts over four days, plus what readers must not see."""
    other = make_user(name="Tomás Ferreira", email="tomas@example.com")
    day = timedelta(days=1)
    posts = {
        "flask": make_post("Flask tips", tags=["Flask", "Python"], published_at=NOW - 4 * day),
        "python": make_post(
            "Python notes", tags=["Python"], published_at=NOW - 3 * day, authors=[other]
        ),
        "both": make_post(
            "Flask and SQL",
            tags=["SQL", "Flask", "#internal"],
            published_at=NOW - 2 * day,
            featured=True,
        ),
        "sql": make_post("SQL only", tags=["SQL"], published_at=NOW - day, authors=[other, author]),
    }
    make_post("Draft", status=PostStatus.DRAFT, tags=["Flask"])
    make_post("About", kind=PostKind.PAGE)
    return posts


def _titles(response: Any) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [post["title"] for post in response.get_json()["posts"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["SQL only", "Flask and SQL", "Python notes", "Flask tips"]),
        ("order=oldest", ["Flask tips", "Python notes", "Flask and SQL", "SQL only"]),
        ("tag=flask", ["Flask and SQL", "Flask tips"]),
        ("tag=flask&tag=sql", ["SQL only", "Flask and SQL", "Flask tips"]),
        ("tag=flask&tag=sql&tag_mode=all", ["Flask and SQL"]),
        ("tag=flask&tag=nonexistent&tag_mode=all", []),
        ("tag=hash-internal", []),
        ("author=tomas-ferreira", ["SQL only", "Python notes"]),
        ("author=nobody", []),
        ("featured=true", ["Flask and SQL"]),
        ("featured=false&tag=sql", ["SQL only"]),
        ("published_before=2026-05-29T13:00:00%2B00:00", ["Python notes", "Flask tips"]),
        ("published_after=2026-05-30T13:00:00Z", ["SQL only"]),
    ],
)
def test_posts_can_be_filtered(
    client: FlaskClient, blog: Any, query: str, expected: list[str]
) -> None:
    assert _titles(client.get(f"/api/v1/posts/?{query}")) == expected


def test_a_post_carries_what_a_front_end_needs(client: FlaskClient, blog: Any) -> None:
    post = client.get(f"/api/v1/posts/{blog['both'].id}/").get_json()["post"]
    assert post["url"] == "https://blog.example.com/flask-and-sql/"
    assert post["published_at"] == "2026-05-30T12:00:00+00:00"
    assert [t["name"] for t in post["tags"]] == ["SQL", "Flask"]  # no internal tag
    assert post["primary_tag"]["slug"] == "sql"
    assert post["primary_tag"]["url"] == "https://blog.example.com/tag/sql/"
    assert post["authors"][0]["url"] == "https://blog.example.com/author/maya-okafor/"
    assert "<p>" in post["html"]
    assert post["featured"] is True
    assert "email" not in post["authors"][0]
    by_slug = client.get("/api/v1/posts/slug/flask-and-sql/").get_json()["post"]
    assert by_slug == post


HIDDEN = [
    "/api/v1/posts/slug/draft/",
    "/api/v1/posts/slug/about/",
    "/api/v1/posts/999999/",
    "/api/v1/tags/hash-internal/",
    "/api/v1/authors/nobody/",
    "/api/v1/tags/nonexistent/",
]


@pytest.mark.parametrize("path", HIDDEN)
def test_what_readers_cannot_see_is_not_found(client: FlaskClient, blog: Any, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 404
    assert body["title"]


def test_tags_and_authors_count_only_public_posts(client: FlaskClient, blog: Any) -> None:
    tags = {t["slug"]: t["post_count"] for t in client.get("/api/v1/tags/").get_json()["tags"]}
    assert tags == {"flask": 2, "python": 2, "sql": 2}
    assert client.get("/api/v1/tags/flask/").get_json()["tag"]["post_count"] == 2
    authors = client.get("/api/v1/authors/").get_json()["authors"]
    assert {(a["slug"], a["post_count"]) for a in authors} == {
        ("maya-okafor", 3), ("tomas-ferreira", 2)
    }  # fmt: skip


def test_an_author_is_found_by_the_api_exactly_when_the_site_shows_their_page(
    client: FlaskClient, blog: Any, make_user: Any, make_post: Any
) -> None:
    quiet = make_user(name="Quiet Writer")  # staff, but nothing public
    make_post("Only a draft", status=PostStatus.DRAFT, authors=[quiet])
    gone = make_user(name="Gone Writer")
    gone.deactivated_at = NOW  # deactivated, with nothing public either
    db.session.commit()
    for slug in ("quiet-writer", "gone-writer", "nobody"):
        assert client.get(f"/author/{slug}/").status_code == 404
        assert client.get(f"/api/v1/authors/{slug}/").status_code == 404
    # A byline outlives its account: a deactivated author with public posts keeps both pages.
    retired = make_user(name="Retired Writer")
    make_post("Still public", authors=[retired])
    retired.deactivated_at = NOW
    db.session.commit()
    assert client.get("/author/retired-writer/").status_code == 200
    found = client.get("/api/v1/authors/retired-writer/").get_json()["author"]
    assert (found["name"], found["post_count"]) == ("Retired Writer", 1)


def test_page_numbers_come_with_totals(client: FlaskClient, blog: Any) -> None:
    body = client.get("/api/v1/posts/?limit=3&page=2").get_json()
    assert [p["title"] for p in body["posts"]] == ["Flask tips"]
    assert body["pagination"] == {
        "limit": 3, "page": 2, "pages": 2, "total": 4, "next_cursor": None
    }  # fmt: skip
    assert client.get("/api/v1/posts/?limit=3&page=3").status_code == 404


def test_a_cursor_walk_never_skips_or_repeats_while_posts_are_published(
    client: FlaskClient, make_post: Any
) -> None:
    for day in range(12):
        make_post(f"Post {day:02}", published_at=NOW - timedelta(days=30 - day))
    make_post("Due later", status=PostStatus.SCHEDULED, published_at=NOW + timedelta(minutes=5))
    seen: list[str] = []
    url = "/api/v1/posts/?limit=5"
    for step in range(10):
        response = client.get(url)
        seen += _titles(response)
        if step == 0:  # new posts appear while the client walks
            make_post("Brand new", published_at=NOW)
            publish_due_posts(db.session, now=NOW + timedelta(hours=1))
            db.session.commit()
        cursor = response.get_json()["pagination"]["next_cursor"]
        if cursor is None:
            assert "Link" not in response.headers
            break
        assert response.headers["Link"].endswith('; rel="next"')
        assert cursor in response.headers["Link"]
        url = f"/api/v1/posts/?limit=5&cursor={cursor}"
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(f"Post {day:02}" for day in range(12))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("page=0", "page"),
        ("page=x", "page"),
        ("order=sideways", "order"),
        ("tag_mode=some", "tag_mode"),
        ("featured=perhaps", "featured"),
        ("published_before=yesterday", "published_before"),
        ("cursor=forged.token", "cursor"),
        ("page=2&cursor=abc", "cursor"),
    ],
)
def test_bad_parameters_get_a_problem_naming_the_field(
    client: FlaskClient, blog: Any, query: str, field: str
) -> None:
    response = client.get(f"/api/v1/posts/?{query}")
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    body = response.get_json()
    assert body["title"] == "Invalid input"
    assert field in [error["field"] for error in body["errors"]]


def test_a_cursor_from_another_order_is_refused(client: FlaskClient, blog: Any) -> None:
    cursor = client.get("/api/v1/posts/?limit=1").get_json()["pagination"]["next_cursor"]
    response = client.get(f"/api/v1/posts/?limit=1&order=oldest&cursor={cursor}")
    assert response.status_code == 422
    assert "order" in response.get_json()["detail"]


def test_reads_answer_304_until_something_changes(
    client: FlaskClient, blog: Any, make_post: Any
) -> None:
    first = client.get("/api/v1/posts/")
    etag = first.headers["ETag"]
    assert "max-age" in first.headers["Cache-Control"]
    again = client.get("/api/v1/posts/", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    make_post("Something new", published_at=NOW)
    changed = client.get("/api/v1/posts/", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


def test_the_content_api_is_open_to_other_origins_and_the_admin_api_is_not(
    client: FlaskClient, blog: Any
) -> None:
    read = client.get("/api/v1/posts/", headers={"Origin": "https://front.example"})
    assert read.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in read.headers["Access-Control-Expose-Headers"]
    preflight = client.options(
        "/api/v1/posts/",
        headers={"Origin": "https://front.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "If-None-Match"},
    )  # fmt: skip
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    admin = client.get("/api/v1/admin/posts/", headers={"Origin": "https://front.example"})
    assert "Access-Control-Allow-Origin" not in admin.headers


def test_unknown_api_paths_and_methods_are_problems(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here/")
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    wrong = client.delete("/api/v1/posts/")
    assert wrong.status_code == 405
    assert wrong.content_type == "application/problem+json"
    assert "GET" in wrong.headers["Allow"]


def test_the_openapi_document_and_docs_are_served(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/posts/" in spec["paths"]
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert "application/problem+json" in default
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger" in docs.get_data().lower()


def test_readers_subscribe_through_the_api_without_learning_who_else_does(
    client: FlaskClient, blog: Any
) -> None:
    from broadsheet.newsletter.models import Subscriber, SubscriberStatus
    from broadsheet.newsletter.services import find_subscriber

    first = client.post("/api/v1/subscribers/", json={"email": "Reader@Example.com",
                                                       "tags": ["flask"]})  # fmt: skip
    again = client.post("/api/v1/subscribers/", json={"email": "reader@example.com"})
    assert first.status_code == again.status_code == 202
    assert first.get_json() == again.get_json()
    subscriber = find_subscriber(db.session, "reader@example.com")
    assert isinstance(subscriber, Subscriber)
    assert subscriber.status is SubscriberStatus.PENDING  # until the emailed button is pressed
    bad = client.post("/api/v1/subscribers/", json={"email": "nope", "tags": ["no-such-tag"]})
    problem = bad.get_json()
    assert bad.status_code == 422
    assert {e["field"] for e in problem["errors"]} >= {"email"}
    unknown = client.post("/api/v1/subscribers/", json={"email": "x@example.com", "name": "X"})
    assert [e["field"] for e in unknown.get_json()["errors"]] == ["name"]
