"""The broadsheet command: init, user create, token create, demo, and its error lines."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from broadsheet.accounts.models import ApiToken, Role, User
from broadsheet.accounts.services import verify_password
from broadsheet.content.models import Post, PostKind, PostStatus, PostTag, Tag, with_links
from broadsheet.content.rendering import render_markdown
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter.models import Subscriber, SubscriberStatus, SubscriberTag
from broadsheet.newsletter.sending import freeze_recipients

BROADSHEET = [sys.executable, "-c", "from broadsheet.cli import main; main()"]


def test_init_creates_the_owner_once(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        args=["init", "--owner-email", "Owner@Example.com", "--owner-password", "correct horse"]
    )
    assert result.exit_code == 0, result.output
    owner = db.session.scalars(select(User)).one()
    assert owner.email == "owner@example.com"
    assert owner.role is Role.OWNER
    assert verify_password(owner, "correct horse")
    again = runner.invoke(args=["init", "--owner-email", "other@example.com"])
    assert again.exit_code == 0
    assert "already exists" in again.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["user", "create", "not-an-email", "--role", "author", "--password", "long enough!"],
         "email: is not an email address"),
        (["user", "create", "a@example.com", "--role", "author", "--password", "short"],
         "password: must be at least 10 characters"),
        (["user", "create", "a@example.com", "--role", "emperor"], "Invalid value for '--role'"),
        (["token", "create", "nobody@example.com"], "no staff account for nobody@example.com"),
    ],
)  # fmt: skip
def test_bad_input_gets_one_clear_line_and_changes_nothing(
    runner: FlaskCliRunner, arguments: list[str], message: str
) -> None:
    result = runner.invoke(args=arguments)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_user_create_refuses_a_second_account_for_one_address(runner: FlaskCliRunner) -> None:
    args = ["user", "create", "ed@example.com", "--role", "editor", "--password", "long enough!"]
    assert runner.invoke(args=args).exit_code == 0
    second = runner.invoke(args=args)
    assert second.exit_code == 1
    assert "ed@example.com already has an account" in second.output


def test_a_token_is_printed_once_and_only_its_hash_is_kept(runner: FlaskCliRunner) -> None:
    runner.invoke(args=["user", "create", "ed@example.com", "--role", "editor", "--name", "Ed"])
    result = runner.invoke(args=["token", "create", "ed@example.com", "--label", "deploy script"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip()
    assert secret.startswith("bs_")
    assert len(secret) > 40
    token = db.session.scalars(select(ApiToken)).one()
    assert token.label == "deploy script"
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in token.token_hash


def _snapshot() -> list[tuple[str, str, str]]:
    return list(db.session.execute(select(Post.slug, Post.title, Post.markdown).order_by(Post.id)))


def test_demo_content_is_deterministic_realistic_and_consistent(
    app: Flask, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(args=["demo", "--posts", "120", "--tags", "50", "--authors", "3"])
    assert result.exit_code == 0, result.output
    assert "Added 120 posts" in result.output
    first = _snapshot()
    posts = db.session.scalars(select(Post).options(*with_links())).all()
    stories = [p for p in posts if p.kind is PostKind.POST]
    assert len(stories) == 120
    assert {p.kind for p in posts} == {PostKind.POST, PostKind.PAGE}
    assert len({a.id for p in stories for a in p.authors}) == 3
    assert any("<pre><code" in p.html for p in stories)
    assert any(p.status is PostStatus.DRAFT for p in stories)
    # Assembled from pre-rendered blocks, the HTML is what rendering the whole post gives.
    for post in stories[:40]:
        rendered = render_markdown(post.markdown)
        assert post.html == rendered.html
        assert post.excerpt == rendered.excerpt
    # The archive copy of the date matches the rule the services keep.
    for post in stories:
        expected = post.published_at if post.status is PostStatus.PUBLISHED else None
        assert {link.published_at for link in post.tag_links} == {expected}
    # A long tail: the most used tag is on far more posts than the median one.
    counts = sorted(
        db.session.execute(select(func.count()).select_from(PostTag).group_by(PostTag.tag_id))
        .scalars()
        .all()
    )
    assert counts[-1] >= 5 * counts[len(counts) // 2]
    assert db.session.scalar(select(func.count()).select_from(Tag)) == 51  # and one internal

    db.session.remove()
    from tests.conftest import _empty_tables

    _empty_tables()
    assert (
        runner.invoke(args=["demo", "--posts", "120", "--tags", "50", "--authors", "3"]).exit_code
        == 0
    )
    assert _snapshot() == first


def test_demo_subscribers_look_like_a_real_list_and_a_publish_finds_its_readers(
    app: Flask, runner: FlaskCliRunner
) -> None:
    args = ["demo", "--posts", "40", "--tags", "20", "--authors", "2"]
    assert runner.invoke(args=args).exit_code == 0
    without = _snapshot()
    db.session.remove()
    from tests.conftest import _empty_tables

    _empty_tables()
    result = runner.invoke(args=[*args, "--subscribers", "600"])
    assert result.exit_code == 0, result.output
    assert "and 600 subscribers" in result.output
    assert _snapshot() == without  # asking for subscribers changes no post

    readers = db.session.scalars(select(Subscriber)).all()
    assert len(readers) == 600
    assert len({r.email for r in readers}) == 600
    by_status = {s: sum(r.status is s for r in readers) for s in SubscriberStatus}
    assert by_status[SubscriberStatus.CONFIRMED] > 450
    assert by_status[SubscriberStatus.PENDING] > 0
    assert by_status[SubscriberStatus.UNSUBSCRIBED] > 0
    for reader in readers:
        assert (reader.confirmed_at is None) == (reader.status is SubscriberStatus.PENDING)
        assert (reader.unsubscribed_at is None) != (reader.status is SubscriberStatus.UNSUBSCRIBED)
    choosers = db.session.scalars(select(SubscriberTag.subscriber_id).distinct()).all()
    confirmed = {r.id for r in readers if r.status is SubscriberStatus.CONFIRMED}
    assert 0 < len(choosers) < len(confirmed) // 2
    assert set(choosers) <= confirmed

    # Freezing a post's recipients takes everyone confirmed but those who chose other tags.
    post = db.session.scalars(
        select(Post).where(Post.kind == PostKind.POST, Post.status == PostStatus.PUBLISHED)
    ).first()
    assert post is not None
    send = freeze_recipients(db.session, post.id, now=utcnow())
    assert send is not None
    takes_all = confirmed - set(choosers)
    assert len(takes_all) <= send.recipients < len(confirmed)
    db.session.rollback()

    # Run again, it adds readers beside the first ones.
    assert runner.invoke(args=["demo", "--posts", "0", "--subscribers", "50"]).exit_code == 0
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 650


def _run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update({"BROADSHEET_INSTANCE": str(tmp_path), **env})
    return subprocess.run(
        BROADSHEET + args, env=environment, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("database_url", "message"),
    [
        ("mysql://root@127.0.0.1/blog", "DATABASE_URL uses mysql://"),
        ("postgresql://postgres@127.0.0.1:1/blog", "cannot reach the database"),
    ],
)
def test_a_bad_or_unreachable_database_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, database_url: str, message: str
) -> None:
    result = _run(["init"], {"DATABASE_URL": database_url, "SECRET_KEY": "x" * 32}, tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"broadsheet: {message}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_init_then_demo_through_the_console_script(
    app: Flask, tmp_path: Path, database_url: str
) -> None:
    # PostgreSQL is given the way Heroku spells it.
    url = database_url.replace("postgresql://", "postgres://", 1)
    env = {"DATABASE_URL": url, "SECRET_KEY": "s" * 32}
    init = _run(
        ["init", "--owner-email", "o@example.com", "--owner-password", "long enough!"],
        env,
        tmp_path,
    )
    assert init.returncode == 0, init.stderr
    demo = _run(["demo", "--posts", "30", "--tags", "10"], env, tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "Added 30 posts" in demo.stdout
