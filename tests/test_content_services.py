"""Writing and publishing posts through the content services, on both databases."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import Post, PostKind, PostStatus, PostTag, with_links
from broadsheet.content.services import create_post, publish_due_posts
from broadsheet.errors import Invalid
from broadsheet.extensions import db
from tests.conftest import NOW
from tests.html import unsafe_markup


def _load(post_id: int) -> Post:
    db.session.expire_all()
    return db.session.scalars(select(Post).where(Post.id == post_id).options(*with_links())).one()


def _listing_dates(post_id: int) -> set[Any]:
    return set(db.session.scalars(select(PostTag.published_at).where(PostTag.post_id == post_id)))


def test_a_post_is_rendered_tagged_and_linked_when_saved(make_post: Any, author: Any) -> None:
    post = make_post(
        "Hello, Flask!",
        markdown="First *paragraph*.\n\n## Setup\n\n```python\nprint('hi')\n```\n",
        tags=["Flask", "python", "#internal-note", "flask"],
    )
    stored = _load(post.id)
    assert stored.slug == "hello-flask"
    assert "<em>paragraph</em>" in stored.html
    assert 'id="setup"' in stored.html
    assert '<span class="nb">print</span>' in stored.html
    assert stored.excerpt == "First paragraph."
    assert [t.name for t in stored.tags] == ["Flask", "python", "#internal-note"]
    assert [t.name for t in stored.public_tags] == ["Flask", "python"]
    assert stored.primary_tag is not None
    assert stored.primary_tag.name == "Flask"
    assert stored.authors == [author]
    assert stored.published_at == NOW
    assert _listing_dates(post.id) == {NOW}


def test_tags_are_shared_between_posts(make_post: Any) -> None:
    first = make_post("One", tags=["Flask"])
    second = make_post("Two", tags=["flask", "SQL"])
    assert _load(first.id).tags[0].id == _load(second.id).tags[0].id


def test_slugs_stay_unique_and_avoid_the_sites_own_paths(make_post: Any) -> None:
    assert make_post("Same title").slug == "same-title"
    assert make_post("Same title").slug == "same-title-2"
    assert make_post("Tag").slug == "tag-2"
    assert make_post("2024").slug == "2024"  # derived slugs may be numbers…
    with pytest.raises(Invalid) as caught:
        make_post("Years", slug="2024")  # …but a chosen one may not shadow a year archive
    assert "slug" in caught.value.fields


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"title": "   "}, {"title"}),
        ({"title": "x" * 301}, {"title"}),
        ({"authors": []}, {"authors"}),
        ({"slug": "Not A Slug"}, {"slug"}),
        ({"slug": "admin"}, {"slug"}),
        ({"status": PostStatus.SCHEDULED}, {"published_at"}),
        (
            {"status": PostStatus.PUBLISHED, "published_at": NOW + timedelta(days=1)},
            {"published_at"},
        ),
        ({"title": "", "authors": [], "slug": "feed"}, {"title", "authors", "slug"}),
    ],
)
def test_bad_input_names_every_field_and_writes_nothing(
    app: Flask, author: Any, fields: dict[str, Any], bad: set[str]
) -> None:
    arguments: dict[str, Any] = {
        "title": "Fine", "markdown": "x", "authors": [author], "now": NOW, "actor": OPERATOR
    }  # fmt: skip
    with pytest.raises(Invalid) as caught:
        create_post(db.session, **{**arguments, **fields})
    assert set(caught.value.fields) == bad
    db.session.rollback()
    assert db.session.scalar(select(Post.id)) is None


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<img src="x" onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<iframe src="https://evil.example"></iframe>',
        '<svg onload="alert(1)"></svg>',
        '<div style="background:url(javascript:alert(1))">x</div>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        "<object data='data:text/html,<script>alert(1)</script>'></object>",
        '<p onmouseover="alert(1)">hover</p>',
        '<form action="https://evil.example"><input name="q"></form>',
    ],
)
def test_no_script_reaches_a_reader(make_post: Any, payload: str) -> None:
    html = make_post("Payload", markdown=f"Before\n\n{payload}\n\nAfter").html
    assert unsafe_markup(html) == []


def test_markdown_has_tables_strikethrough_and_footnotes(make_post: Any) -> None:
    html = make_post(
        "Extras", markdown="| a | b |\n|---|---|\n| 1 | 2 |\n\n~~old~~ new[^n]\n\n[^n]: A note.\n"
    ).html
    assert "<table>" in html
    assert "<td>1</td>" in html
    assert "<s>old</s>" in html
    assert 'class="footnotes"' in html
    assert "A note." in html


def test_a_given_excerpt_wins_over_the_derived_one(make_post: Any) -> None:
    assert make_post("Ex", markdown="Long body.", excerpt="Short and sweet.").excerpt == (
        "Short and sweet."
    )


def test_drafts_pages_and_scheduled_posts_stay_out_of_the_archives(make_post: Any) -> None:
    draft = make_post("Draft", status=PostStatus.DRAFT, tags=["a"])
    page = make_post("About us", kind=PostKind.PAGE, tags=["a"])
    scheduled = make_post(
        "Later", status=PostStatus.SCHEDULED, published_at=NOW + timedelta(hours=1), tags=["a"]
    )
    for post in (draft, page, scheduled):
        assert _listing_dates(post.id) == {None}


def test_due_posts_are_published_once_and_overdue_ones_caught_up(make_post: Any) -> None:
    early = make_post(
        "Early", status=PostStatus.SCHEDULED, published_at=NOW + timedelta(minutes=1), tags=["a"]
    )
    later = make_post(
        "Later", status=PostStatus.SCHEDULED, published_at=NOW + timedelta(hours=2), tags=["a"]
    )
    # The scheduler was down for an hour: the first run after it catches up.
    assert publish_due_posts(db.session, now=NOW + timedelta(hours=1)) == [early.id]
    db.session.commit()
    assert publish_due_posts(db.session, now=NOW + timedelta(hours=1, minutes=1)) == []
    assert publish_due_posts(db.session, now=NOW + timedelta(hours=3)) == [later.id]
    db.session.commit()
    db.session.expire_all()
    assert _load(early.id).status is PostStatus.PUBLISHED
    assert _listing_dates(early.id) == {NOW + timedelta(minutes=1)}


def test_two_overlapping_scheduler_runs_publish_each_post_once(app: Flask, make_post: Any) -> None:
    for number in range(5):
        make_post(
            f"Due {number}",
            status=PostStatus.SCHEDULED,
            published_at=NOW + timedelta(minutes=number + 1),
        )
    barrier = threading.Barrier(2)
    results: list[list[int]] = []

    def run() -> None:
        with app.app_context():
            barrier.wait()
            results.append(publish_due_posts(db.session, now=NOW + timedelta(hours=1)))
            db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    published = [post_id for result in results for post_id in result]
    assert len(published) == 5
    assert len(set(published)) == 5


def test_tag_names_that_share_an_address_are_one_tag(make_post: Any) -> None:
    post = make_post("Plus plus", tags=["C", "C++", "c!"])
    assert [t.name for t in _load(post.id).tags] == ["C"]


def test_a_tag_name_without_a_letter_or_digit_is_refused(app: Flask, author: Any) -> None:
    with pytest.raises(Invalid) as caught:
        create_post(
            db.session, title="T", markdown="", authors=[author], now=NOW, tags=["&&"],
            actor=OPERATOR,
        )  # fmt: skip
    assert "tags" in caught.value.fields


def test_an_excerpt_keeps_a_space_between_block_elements(make_post: Any) -> None:
    post = make_post(
        "Lists",
        markdown=(
            "What you get:\n\n"
            "<ul><li>Weekly at most</li><li>Unsubscribe in one click</li></ul>\n\n"
            "<p>First</p><p>Second</p>\n\n"
            "A line<br>and the next, <em>emphasised</em>ly.\n"
        ),
    )
    assert _load(post.id).excerpt == (
        "What you get: Weekly at most Unsubscribe in one click First Second "
        "A line and the next, emphasisedly."
    )
