"""Importing WordPress, Ghost, Ghost members and Substack exports, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from broadsheet.accounts.models import Role, User
from broadsheet.content.models import Post, PostKind, PostStatus, Tag, with_links
from broadsheet.content.redirects import Redirect
from broadsheet.extensions import db
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from broadsheet.porting.models import ImportItem, ImportJob, JobStatus
from tests.porting_support import FIXTURES, REFERENCE_WXR, import_file


def _post(slug: str) -> Post:
    db.session.expire_all()
    return db.session.scalars(select(Post).where(Post.slug == slug).options(*with_links())).one()


def _count(model: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def test_a_wordpress_export_brings_every_field_and_keeps_old_links(
    client: FlaskClient, make_post: Any, author: User, tmp_path: Path
) -> None:
    make_post("Taken", slug="taken")  # the export's second post wants this slug
    job = import_file(FIXTURES / "wordpress.xml", tmp_path)
    assert job.status is JobStatus.DONE

    hello = _post("hello-garden")
    assert hello.status is PostStatus.PUBLISHED
    assert hello.published_at == datetime(2019, 5, 1, 10, 0, tzinfo=UTC)
    assert hello.featured  # sticky
    assert hello.custom_excerpt == "Our first rose."
    assert [t.name for t in hello.tags] == ["Local", "Roses"]
    assert hello.authors == [author]  # matched by email, whatever its case
    assert hello.feature_image == "https://old.example.com/wp-content/uploads/rose.jpg"
    assert "wp:paragraph" not in hello.markdown
    assert "<strong>first</strong>" in hello.html
    assert "<figcaption>The red one</figcaption>" in hello.html  # [caption]
    assert hello.html.count("rose.jpg") == 2  # the caption's image and the [gallery]'s
    assert 'href="https://video.example.com/watch/42"' in hello.html  # [embed]
    assert '[newsletter_form list="2"]' in hello.html  # unknown shortcode: visible
    assert "Water twice<br" in hello.html  # the classic editor's line break

    clash = _post("taken-2")
    assert clash.feature_image == "https://old.example.com/wp-content/uploads/late.jpg"
    assert [t.name for t in clash.tags] == ["News"]
    sam = db.session.scalars(select(User).where(User.email == "sam@old.example.com")).one()
    assert clash.authors == [sam]
    assert sam.password_hash is None  # invited: sets a password through a reset
    assert sam.role is Role.AUTHOR
    assert sam.name == "Sam Gardener"

    draft = _post("half-written")
    assert draft.status is PostStatus.DRAFT
    assert draft.published_at is None
    later = _post("coming-soon")
    assert later.status is PostStatus.SCHEDULED
    assert later.published_at == datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    assert _post("about-the-garden").kind is PostKind.PAGE
    assert _count(Post) == 6  # the five imported and the one that was here

    local = db.session.scalars(select(Tag).where(Tag.name == "Local")).one()
    assert "From our street." in local.description
    assert "under “News”" in local.description

    for old, new in [
        ("/?p=11", "/hello-garden/"),
        ("/2019/05/hello-garden/", "/hello-garden/"),
        ("/2019/06/taken/", "/taken-2/"),
        ("/?page_id=16", "/about-the-garden/"),
        ("/category/news/local-news/", "/tag/local/"),
        ("/?cat=4", "/tag/local/"),
    ]:
        response = client.get(old)
        assert response.status_code == 301, old
        assert response.headers["Location"].endswith(new), old

    report = job.report or {}
    assert {s["key"] for s in report["skipped"]} == {"17", "18"}  # the trash, a menu item
    assert report["clash_count"] == 1
    assert report["clashes"][0] == {"kind": "post", "wanted": "taken", "given": "taken-2"}
    assert report["images_kept_count"] == 2


def test_importing_the_same_file_twice_creates_nothing_twice(
    make_post: Any, author: User, tmp_path: Path
) -> None:
    import_file(FIXTURES / "wordpress.xml", tmp_path)
    counts = [_count(m) for m in (Post, Tag, User, Redirect, ImportItem)]
    again = import_file(FIXTURES / "wordpress.xml", tmp_path)
    assert [_count(m) for m in (Post, Tag, User, Redirect, ImportItem)] == counts
    report = again.report or {}
    assert report["created"] == {}
    assert report["already_imported"]["posts"] == 4
    assert again.summary is not None
    assert again.summary["imported_before"]
    assert again.summary["clash_count"] == 0  # the posts already here are not clashes


def test_a_ghost_export_brings_posts_pages_tags_authors_and_meta(
    client: FlaskClient, author: User, tmp_path: Path
) -> None:
    job = import_file(FIXTURES / "ghost.json", tmp_path)
    hello = _post("ghostly-hello")
    assert hello.status is PostStatus.PUBLISHED
    assert hello.published_at == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert hello.updated_at == datetime(2024, 1, 2, 9, 0, tzinfo=UTC)
    assert hello.featured
    assert hello.feature_image == "https://ghost.example.com/content/images/cover.png"
    assert hello.custom_excerpt == "A hello from the other side."
    assert hello.meta_title == "Hello, meta"
    assert hello.meta_description == "Described for search engines."
    assert [t.name for t in hello.tags] == ["Spooky Things", "#hidden"]
    assert [t.name for t in hello.public_tags] == ["Spooky Things"]  # internal stays internal
    assert "<figcaption>Pictured</figcaption>" in hello.html
    assert "H<sub>2</sub>O" in hello.html
    assert 'href="/colophon/"' in hello.html  # Ghost's __GHOST_URL__ becomes this site
    casper = hello.authors[0]
    assert (casper.email, casper.role, casper.password_hash) == (
        "casper@ghost.example.com", Role.EDITOR, None,
    )  # fmt: skip
    assert _post("colophon").kind is PostKind.PAGE
    assert _post("ghost-draft").status is PostStatus.DRAFT
    assert _post("ghost-later").status is PostStatus.SCHEDULED
    report = job.report or {}
    assert report["canonical_skipped"] == 1  # Broadsheet has no canonical URL field
    assert client.get("/tag/spooky/").headers["Location"].endswith("/tag/spooky-things/")


def test_ghost_members_come_in_confirmed_or_unsubscribed_and_bad_rows_are_listed(
    app: Flask, tmp_path: Path
) -> None:
    job = import_file(FIXTURES / "ghost-members.csv", tmp_path)
    one = db.session.scalars(
        select(Subscriber).where(Subscriber.email == "reader.one@example.com")
    ).one()
    assert one.status is SubscriberStatus.CONFIRMED
    assert one.source == "import"
    assert one.confirmed_at == datetime(2022, 3, 4, 5, 6, 7, tzinfo=UTC)  # the consent date
    assert one.created_at == one.confirmed_at
    assert "Ghost" in one.consent
    gone = db.session.scalars(
        select(Subscriber).where(Subscriber.email == "gone@example.com")
    ).one()
    assert gone.status is SubscriberStatus.UNSUBSCRIBED
    assert _count(Subscriber) == 2
    skipped = {s["key"]: s["reason"] for s in (job.report or {})["skipped"]}
    assert set(skipped) == {"line 4", "line 5"}
    assert "not an email address" in skipped["line 4"]
    assert "not a date" in skipped["line 5"]


def test_substack_subscribers_come_in_with_their_state(app: Flask, tmp_path: Path) -> None:
    import_file(FIXTURES / "substack.csv", tmp_path)
    states = {
        row[0]: row[1] for row in db.session.execute(select(Subscriber.email, Subscriber.status))
    }
    assert states == {
        "stack.one@example.com": SubscriberStatus.CONFIRMED,
        "stack.off@example.com": SubscriberStatus.UNSUBSCRIBED,
    }
    import_file(FIXTURES / "substack.csv", tmp_path)
    assert _count(Subscriber) == 2


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<rss><channel><wp:wxr_version xmlns:wp="http://wordpress.org/export/1.2/">1.2</wp:wxr_version>
<item><title>&lol3;</title></item></channel></rss>"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss><channel><title>&xxe;</title></channel></rss>"""


def _truncated_wxr() -> bytes:
    data = (FIXTURES / "wordpress.xml").read_bytes()
    return data[: len(data) * 2 // 3]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", b"just some words", "is not a WordPress export"),
        ("empty.xml", b"", "empty"),
        ("cut.xml", _truncated_wxr(), "not complete"),
        ("laughs.xml", BILLION_LAUGHS.encode(), "declares a DTD"),
        ("xxe.xml", XXE.encode(), "declares a DTD"),
        ("feed.xml", b"<rss><channel><item><title>x</title></item></channel></rss>", "RSS feed"),
        ("page.xml", b"<html><body>hi</body></html>", "not a WordPress export"),
        ("shape.json", b'{"posts": [{"title": "x"}]}', "not a Ghost export"),
        ("cut.json", (FIXTURES / "ghost.json").read_bytes()[:700], "not complete"),
        ("list.csv", b"name,phone\nA,1\n", "is not a WordPress export"),
        ("big.xml", (FIXTURES / "wordpress.xml").read_bytes(), "larger than"),
    ],
)
def test_bad_files_are_refused_with_a_clear_error_and_change_nothing(
    name: str, content: bytes, message: str, make_post: Any, tmp_path: Path
) -> None:
    from broadsheet.errors import Invalid
    from tests.porting_support import start

    make_post("Already here")
    path = tmp_path / name
    path.write_bytes(content)
    folder = tmp_path / "imports"
    before = [_count(m) for m in (Post, Tag, User, Redirect, Subscriber, ImportJob, ImportItem)]
    with pytest.raises(Invalid) as refused:
        start(path, folder, max_bytes=2048 if name == "big.xml" else 10_000_000)
    db.session.rollback()
    assert message in refused.value.message
    assert [
        _count(m) for m in (Post, Tag, User, Redirect, Subscriber, ImportJob, ImportItem)
    ] == before
    assert not any(folder.iterdir()) if folder.exists() else True  # no upload left behind


def test_the_command_line_imports_with_a_dry_run_first(
    runner: FlaskCliRunner, author: User, tmp_path: Path
) -> None:
    dry = runner.invoke(args=["import", "--dry-run", str(FIXTURES / "wordpress.xml")])
    assert dry.exit_code == 0, dry.output
    assert "4 posts" in dry.output
    assert "1 pages" in dry.output
    assert "Dry run: nothing was changed." in dry.output
    assert _count(Post) == 0
    done = runner.invoke(args=["import", str(FIXTURES / "wordpress.xml")])
    assert done.exit_code == 0, done.output
    assert "Created: 1 authors, 1 pages, 4 posts" in done.output
    assert _count(Post) == 5
    refused = runner.invoke(args=["import", str(FIXTURES / "../../conftest.py")])
    assert refused.exit_code == 1
    assert "is not a WordPress export" in refused.output


@pytest.mark.skipif(not REFERENCE_WXR.exists(), reason="WordPress's theme unit test data is absent")
def test_wordpress_theme_unit_test_data_imports_whole(make_user: Any, tmp_path: Path) -> None:
    make_user(Role.OWNER, email="owner@example.com")
    job = import_file(REFERENCE_WXR, tmp_path)
    report = job.report or {}
    assert report["created"]["posts"] == 58
    assert report["created"]["pages"] == 21
    assert report["skipped_count"] == 70  # menu items
    assert all("[/caption]" not in p for p in db.session.scalars(select(Post.markdown)))
