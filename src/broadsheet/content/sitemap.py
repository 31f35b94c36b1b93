"""What the sitemap lists: every public post and page, tag and author, as slugs and dates.

It reads slugs and dates only, never whole posts, in a stable order (oldest
first) so that a new post lands in the last part and the earlier parts stay
as they were.  Tags count once they have a public post (internal ones
never); authors once they have published one, as their pages do.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Select, func, select

from broadsheet.accounts.models import User
from broadsheet.content.models import Post, PostAuthor, PostTag, Tag
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession

SITEMAP_SECTIONS = ("posts", "tags", "authors")


def _sitemap_query(section: str, now: datetime) -> Select[str, datetime | None]:
    if section == "posts":  # posts and pages alike: both live at /<slug>/
        return (
            select(Post.slug.label("slug"), Post.updated_at.label("lastmod"))
            .where(Post.visible_clause(now, kind=None))
            .order_by(Post.published_at, Post.id)
        )
    if section == "tags":
        return (
            select(Tag.slug.label("slug"), func.max(PostTag.published_at).label("lastmod"))
            .join(PostTag, PostTag.tag_id == Tag.id)
            .where(PostTag.published_at <= now, ~Tag.is_internal)
            .group_by(Tag.id, Tag.slug)
            .order_by(Tag.id)
        )
    if section == "authors":
        return (
            select(User.slug.label("slug"), func.max(PostAuthor.published_at).label("lastmod"))
            .join(PostAuthor, PostAuthor.user_id == User.id)
            .where(PostAuthor.published_at <= now)
            .group_by(User.id, User.slug)
            .order_by(User.id)
        )
    raise NotFound(f"no sitemap section {section!r}")


def sitemap_section_summary(
    session: DbSession, section: str, *, now: datetime
) -> tuple[int, datetime | None]:
    """How many public URLs a sitemap section holds, and its newest date, in one query."""
    query = _sitemap_query(section, now).order_by(None).subquery()
    row = session.execute(select(func.count(), func.max(query.c.lastmod))).one()
    return row[0], row[1]


def sitemap_section(
    session: DbSession, section: str, *, now: datetime, offset: int, limit: int
) -> Iterator[tuple[str, datetime | None]]:
    """(slug, last modified) of one window of a section, read in batches, not loaded whole."""
    query = _sitemap_query(section, now).offset(offset).limit(limit)
    rows = session.execute(query.execution_options(yield_per=5000))
    yield from ((slug, lastmod) for slug, lastmod in rows)


def sitemap_section_lastmod(
    session: DbSession, section: str, *, now: datetime, offset: int, limit: int
) -> datetime | None:
    """The newest date in one window of a section (None when it is empty)."""
    window = _sitemap_query(section, now).offset(offset).limit(limit).subquery()
    result: datetime | None = session.scalar(select(func.max(window.c.lastmod)))
    return result
