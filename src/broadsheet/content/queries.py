"""The read side: what readers may see, page by page.

Every function here answers with a fixed number of queries whatever the page
holds (a count, the page's ids through an index, the posts, their tags and
their authors), and nothing a reader must not see leaves it: drafts,
scheduled posts, pages (in listings) and internal tags.

A listing's total, which counts every matching row, is the one cost that
grows with the site: callers may pass a ``Remember`` that keeps it for as
long as the content is unchanged (the site passes the page cache's).

Listings may be asked to treat an empty first page as missing
(``allow_empty=False``): the public site does, so that a tag used only by
drafts, or a staff member who has published nothing, has no page at all.

Beside it: ``paging`` (a page and which numbers exist), ``listing`` (the
Content API's filtered lists, built on ``public_posts_query``), ``sitemap``
(slugs and dates only) and ``staff_queries`` (what staff may work on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select, union_all

from broadsheet.accounts.models import User
from broadsheet.content.models import (
    Post,
    PostAuthor,
    PostKind,
    PostTag,
    Tag,
    with_links,
)
from broadsheet.content.paging import Page, Remember, check_page, compute
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession


@dataclass(frozen=True)
class PostLink:
    """Enough of a post or page to link to it."""

    slug: str
    title: str
    updated_at: datetime


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
    allow_empty: bool,
    remember: Remember,
) -> Page:
    where = (owner_column == owner_id, link.published_at <= now)
    total = remember(
        f"{link.__tablename__}:{owner_id}",
        lambda: session.scalar(select(func.count()).select_from(link).where(*where)) or 0,
    )
    check_page(number, total, per_page, allow_empty=allow_empty)
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
        .where(Post.visible_clause(now))
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
    allow_empty: bool = True,
    remember: Remember = compute,
) -> Page:
    query = public_posts_query(now)
    if since is not None:
        query = query.where(Post.published_at >= since)
    if until is not None:
        query = query.where(Post.published_at < until)
    counted = select(func.count()).select_from(query.order_by(None).subquery())
    total = remember(f"posts:{since}:{until}", lambda: session.scalar(counted) or 0)
    check_page(number, total, per_page, allow_empty=allow_empty)
    ids = list(
        session.scalars(
            query.with_only_columns(Post.id).offset((number - 1) * per_page).limit(per_page)
        )
    )
    return Page(_load_in_order(session, ids), number, per_page, total)


def home_page(
    session: DbSession,
    *,
    now: datetime,
    number: int,
    per_page: int,
    remember: Remember = compute,
) -> Page:
    return _page_of_posts(session, now=now, number=number, per_page=per_page, remember=remember)


def date_archive(
    session: DbSession,
    *,
    year: int,
    month: int | None,
    now: datetime,
    number: int,
    per_page: int,
    allow_empty: bool = True,
    remember: Remember = compute,
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
        session,
        now=now,
        number=number,
        per_page=per_page,
        since=since,
        until=until,
        allow_empty=allow_empty,
        remember=remember,
    )


def public_tag(session: DbSession, slug: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.slug == slug))
    if tag is None or tag.is_internal:
        raise NotFound(f"no tag {slug!r}")
    return tag


def tag_archive(
    session: DbSession,
    tag: Tag,
    *,
    now: datetime,
    number: int,
    per_page: int,
    allow_empty: bool = True,
    remember: Remember = compute,
) -> Page:
    return _page_of_links(
        session,
        PostTag,
        PostTag.tag_id,
        tag.id,
        now=now,
        number=number,
        per_page=per_page,
        allow_empty=allow_empty,
        remember=remember,
    )


@dataclass(frozen=True)
class PublicAuthor:
    user: User
    post_count: int


def public_author(session: DbSession, slug: str, *, now: datetime) -> PublicAuthor:
    """A staff member readers may look up: one with a public post, and how many they have.

    The site's author page and the Content API both ask here, so they agree:
    NotFound for nobody, for staff who have published nothing, and so for a
    deactivated account without public posts (one with posts keeps its byline
    and its page).
    """
    row = session.execute(
        select(User, func.count(PostAuthor.post_id))
        .join(PostAuthor, PostAuthor.user_id == User.id)
        .where(User.slug == slug, PostAuthor.published_at <= now)
        .group_by(User.id)
    ).first()
    if row is None:
        raise NotFound(f"no author {slug!r}")
    return PublicAuthor(row[0], int(row[1]))


def author_archive(
    session: DbSession,
    user: User,
    *,
    now: datetime,
    number: int,
    per_page: int,
    allow_empty: bool = True,
    remember: Remember = compute,
) -> Page:
    return _page_of_links(
        session,
        PostAuthor,
        PostAuthor.user_id,
        user.id,
        now=now,
        number=number,
        per_page=per_page,
        allow_empty=allow_empty,
        remember=remember,
    )


def public_post(
    session: DbSession,
    slug: str | None = None,
    *,
    now: datetime,
    post_id: int | None = None,
    pages: bool = True,
) -> Post:
    """A published post (or page, unless ``pages`` is false) a reader may open, by slug or id.

    The site opens posts and pages by slug; the Content API posts only, by
    either.  Raises NotFound for anything else.
    """
    query = select(Post).options(*with_links())
    query = (
        query.where(Post.id == post_id) if post_id is not None else query.where(Post.slug == slug)
    )
    if not pages:
        query = query.where(Post.kind == PostKind.POST)
    post = session.scalar(query)
    if post is None or not post.is_visible(now):
        raise NotFound("no such post")
    return post


def public_pages(session: DbSession, *, now: datetime) -> list[PostLink]:
    """Published standalone pages (About, Colophon), oldest first: the site's menu."""
    rows = session.execute(
        select(Post.slug, Post.title, Post.updated_at)
        .where(Post.visible_clause(now, kind=PostKind.PAGE))
        .order_by(Post.published_at, Post.id)
    )
    return [PostLink(slug, title, updated_at) for slug, title, updated_at in rows]


def neighbours(
    session: DbSession, post: Post, *, now: datetime
) -> tuple[PostLink | None, PostLink | None]:
    """The public posts just older and just newer than ``post``, in one query.

    Each side is one step along the listing index; pages have no neighbours.
    """
    if post.kind is not PostKind.POST or post.published_at is None:
        return None, None
    when = post.published_at
    public = Post.visible_clause(now)
    columns = (Post.slug, Post.title, Post.updated_at)
    older = (
        select(*columns, literal("older").label("side"))
        .where(
            public,
            Post.published_at <= when,
            or_(Post.published_at < when, and_(Post.published_at == when, Post.id < post.id)),
        )
        .order_by(Post.published_at.desc(), Post.id.desc())
        .limit(1)
        .subquery()
    )
    newer = (
        select(*columns, literal("newer").label("side"))
        .where(
            public,
            Post.published_at >= when,
            or_(Post.published_at > when, and_(Post.published_at == when, Post.id > post.id)),
        )
        .order_by(Post.published_at, Post.id)
        .limit(1)
        .subquery()
    )
    found = {
        row.side: PostLink(row.slug, row.title, row.updated_at)
        for row in session.execute(union_all(select(older), select(newer)))
    }
    return found.get("older"), found.get("newer")
