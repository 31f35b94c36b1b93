"""Writing and publishing posts: every door calls these functions.

Services flush and never commit; the door that called them commits once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.sql.elements import ColumnElement

from broadsheet.accounts.models import User
from broadsheet.content.models import Post, PostAuthor, PostKind, PostStatus, PostTag, Tag
from broadsheet.content.rendering import render_markdown, shorten
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession
from broadsheet.slugs import make_slug, unique_slug

# First path segments the site itself uses: a post cannot take them as its slug.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "author", "feed", "feed.json", "healthz", "page", "readyz", "robots.txt",
        "search", "sitemap.xml", "static", "subscribe", "tag", "unsubscribe",
    }
)  # fmt: skip
MAX_TAG_NAME = 100
_digits = re.compile(r"^\d+$")


def listing_published_at() -> ColumnElement[Any]:
    """The value the link tables keep: the post's date while it is a public post."""
    return case(
        (
            (Post.status == PostStatus.PUBLISHED) & (Post.kind == PostKind.POST),
            Post.published_at,
        ),
        else_=None,
    )


def sync_listing(session: DbSession, post_ids: Sequence[int]) -> None:
    """Copy each post's public date into its tag and author links (NULL when not public)."""
    if not post_ids:
        return
    for link in (PostTag, PostAuthor):
        session.execute(
            update(link)
            .where(link.post_id.in_(post_ids))
            .values(
                published_at=select(listing_published_at())
                .where(Post.id == link.post_id)
                .scalar_subquery()
            )
            .execution_options(synchronize_session=False)
        )


def find_or_create_tags(session: DbSession, names: Iterable[str], *, now: datetime) -> list[Tag]:
    """The tags named, in the order given, creating the missing ones; duplicates dropped."""
    wanted: list[str] = []
    for raw in names:
        name = " ".join(raw.split())
        if name and name.lower() not in (w.lower() for w in wanted):
            wanted.append(name)
    if bad := [n for n in wanted if len(n) > MAX_TAG_NAME]:
        raise Invalid({"tags": f"{bad[0][:20]}… is longer than {MAX_TAG_NAME} characters"})
    slugs = {name: make_slug(name) for name in wanted}
    existing = {
        tag.slug: tag for tag in session.scalars(select(Tag).where(Tag.slug.in_(slugs.values())))
    }
    tags = []
    for name in wanted:
        tag = existing.get(slugs[name])
        if tag is None:
            tag = Tag(name=name, slug=slugs[name], description="", created_at=now)
            session.add(tag)
            existing[tag.slug] = tag
        tags.append(tag)
    session.flush()
    return tags


def check_slug(slug: str) -> str | None:
    """Return why ``slug`` cannot name a post, or None."""
    if slug in RESERVED_SLUGS or _digits.match(slug):
        return f"{slug!r} is used by the site itself"
    if make_slug(slug, max_length=200) != slug:
        return "may hold only lower-case letters, digits and hyphens"
    return None


def create_post(
    session: DbSession,
    *,
    title: str,
    markdown: str,
    authors: Sequence[User],
    now: datetime,
    tags: Sequence[str] = (),
    slug: str | None = None,
    status: PostStatus = PostStatus.DRAFT,
    published_at: datetime | None = None,
    kind: PostKind = PostKind.POST,
    excerpt: str | None = None,
    featured: bool = False,
) -> Post:
    """Add a post (or page), rendered and linked; flushes, never commits.

    A published post without a date is published at ``now``; a scheduled one
    needs a date in the future.  Raises Invalid naming every bad field.
    """
    errors: dict[str, str] = {}
    title = title.strip()
    if not title or len(title) > 300:
        errors["title"] = "must be 1 to 300 characters"
    if not authors:
        errors["authors"] = "a post needs at least one author"
    if slug is not None and (problem := check_slug(slug)):
        errors["slug"] = problem
    if status is PostStatus.PUBLISHED and published_at is None:
        published_at = now
    if status is PostStatus.PUBLISHED and published_at is not None and published_at > now:
        errors["published_at"] = "is in the future; schedule the post instead"
    if status is PostStatus.SCHEDULED and (published_at is None or published_at <= now):
        errors["published_at"] = "a scheduled post needs a time in the future"
    if errors:
        raise Invalid(errors)
    rendered = render_markdown(markdown)
    post = Post(
        kind=kind,
        title=title,
        slug=unique_slug(
            session, Post.slug, slug or make_slug(title, max_length=200), reserved=RESERVED_SLUGS
        ),
        markdown=markdown,
        html=rendered.html,
        custom_excerpt=excerpt,
        excerpt=shorten(excerpt) if excerpt else rendered.excerpt,
        status=status,
        published_at=published_at,
        created_at=now,
        updated_at=now,
        featured=featured,
    )
    for position, tag in enumerate(find_or_create_tags(session, tags, now=now)):
        post.tag_links.append(PostTag(tag=tag, position=position))
    for position, user in enumerate(dict.fromkeys(authors)):
        post.author_links.append(PostAuthor(user=user, position=position))
    session.add(post)
    session.flush()
    sync_listing(session, [post.id])
    return post


def publish_due_posts(session: DbSession, *, now: datetime) -> list[int]:
    """Publish every scheduled post whose time has come; returns the ids this call published.

    Exactly once: the status check sits in the UPDATE itself, so of two
    overlapping runs only one flips each post (PostgreSQL re-checks the row
    after the first commits; SQLite lets one writer in at a time).  A run
    after downtime catches up on everything overdue.
    """
    published = list(
        session.scalars(
            update(Post)
            .where(Post.status == PostStatus.SCHEDULED, Post.published_at <= now)
            .values(status=PostStatus.PUBLISHED, version=Post.version + 1, updated_at=now)
            .returning(Post.id)
            .execution_options(synchronize_session=False)
        )
    )
    sync_listing(session, published)
    return published
