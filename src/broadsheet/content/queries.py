"""The read side: what readers may see, page by page.

Every function here answers with a fixed number of queries whatever the page
holds (a count, the page's ids through an index, the posts, their tags and
their authors), and nothing a reader must not see leaves it: drafts,
scheduled posts, pages (in listings) and internal tags.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, select

from broadsheet.accounts.models import User
from broadsheet.content.models import (
    Post,
    PostAuthor,
    PostKind,
    PostStatus,
    PostTag,
    Tag,
    with_links,
)
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession


@dataclass(frozen=True)
class Page:
    """One page of a listing; ``number`` counts from 1."""

    items: list[Post]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def _check_page(number: int, total: int, per_page: int) -> None:
    """Page 1 always exists (it may be empty); any other page must hold something."""
    if number < 1 or (number > 1 and (number - 1) * per_page >= total):
        raise NotFound(f"there is no page {number}")


def _load_in_order(session: DbSession, ids: Sequence[int]) -> list[Post]:
    if not ids:
        return []
    posts = {
        p.id: p
        for p in session.scalars(select(Post).where(Post.id.in_(ids)).options(*with_links()))
    }
    return [posts[i] for i in ids if i in posts]


def _page_of_links(
    session: DbSession,
    link: Any,
    owner_column: Any,
    owner_id: int,
    *,
    now: datetime,
    number: int,
    per_page: int,
) -> Page:
    where = (owner_column == owner_id, link.published_at <= now)
    total = session.scalar(select(func.count()).select_from(link).where(*where)) or 0
    _check_page(number, total, per_page)
    ids: list[int] = list(
        session.scalars(
            select(link.post_id)
            .where(*where)
            .order_by(link.published_at.desc(), link.post_id.desc())
            .offset((number - 1) * per_page)
            .limit(per_page)
        )
    )
    return Page(_load_in_order(session, ids), number, per_page, total)


def public_posts_query(now: datetime) -> Select[Post]:
    """Public posts (not pages), newest first."""
    return (
        select(Post)
        .where(
            Post.kind == PostKind.POST,
            Post.status == PostStatus.PUBLISHED,
            Post.published_at <= now,
        )
        .order_by(Post.published_at.desc(), Post.id.desc())
    )


def _page_of_posts(
    session: DbSession,
    *,
    now: datetime,
    number: int,
    per_page: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    query = public_posts_query(now)
    if since is not None:
        query = query.where(Post.published_at >= since)
    if until is not None:
        query = query.where(Post.published_at < until)
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    _check_page(number, total, per_page)
    ids = list(
        session.scalars(
            query.with_only_columns(Post.id).offset((number - 1) * per_page).limit(per_page)
        )
    )
    return Page(_load_in_order(session, ids), number, per_page, total)


def home_page(session: DbSession, *, now: datetime, number: int, per_page: int) -> Page:
    return _page_of_posts(session, now=now, number=number, per_page=per_page)


def date_archive(
    session: DbSession, *, year: int, month: int | None, now: datetime, number: int, per_page: int
) -> Page:
    """Posts of one year or one month (UTC), newest first."""
    if not 1 <= year <= 9998 or (month is not None and not 1 <= month <= 12):
        raise NotFound("no such date")
    since = datetime(year, month or 1, 1, tzinfo=UTC)
    if month is None or month == 12:
        until = datetime(year + 1, 1, 1, tzinfo=UTC)
    else:
        until = datetime(year, month + 1, 1, tzinfo=UTC)
    return _page_of_posts(
        session, now=now, number=number, per_page=per_page, since=since, until=until
    )


def public_tag(session: DbSession, slug: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None or tag.is_internal:
        raise NotFound(f"no tag {slug!r}")
    return tag


def tag_archive(session: DbSession, tag: Tag, *, now: datetime, number: int, per_page: int) -> Page:
    return _page_of_links(
        session, PostTag, PostTag.tag_id, tag.id, now=now, number=number, per_page=per_page
    )


def author_by_slug(session: DbSession, slug: str) -> User:
    user = session.scalar(select(User).where(User.slug == slug))
    if user is None:
        raise NotFound(f"no author {slug!r}")
    return user


def author_archive(
    session: DbSession, user: User, *, now: datetime, number: int, per_page: int
) -> Page:
    return _page_of_links(
        session, PostAuthor, PostAuthor.user_id, user.id, now=now, number=number, per_page=per_page
    )


def public_post(session: DbSession, slug: str, *, now: datetime) -> Post:
    """A published post or page a reader may open; NotFound for anything else."""
    post = session.scalar(select(Post).where(Post.slug == slug).options(*with_links()))
    if post is None or not post.is_visible(now):
        raise NotFound(f"no post {slug!r}")
    return post
