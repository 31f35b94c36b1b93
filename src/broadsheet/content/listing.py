"""Filtered post listings for integrators: by tags, author, dates; by page or by cursor.

The cursor is a position (published_at, id) in the listing's order: the next
page starts strictly after it, so a client walking 100,000 posts while others
are published never skips or repeats one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select

from broadsheet.accounts.models import User
from broadsheet.content import search as searching
from broadsheet.content.cards import PostCard, card_query, cards, cards_in_order
from broadsheet.content.models import Post, PostAuthor, PostKind, PostTag, Tag
from broadsheet.content.paging import Remember, check_page, compute
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession


class Order(enum.StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"


class TagMode(enum.StrEnum):
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True)
class PostFilter:
    tags: tuple[str, ...] = ()
    tag_mode: TagMode = TagMode.ANY
    author: str | None = None
    featured: bool | None = None
    published_before: datetime | None = None
    published_after: datetime | None = None
    order: Order = Order.NEWEST


@dataclass(frozen=True)
class Position:
    published_at: datetime
    id: int


@dataclass(frozen=True)
class Listing:
    posts: list[PostCard]
    total: int | None
    next: Position | None


def _filtered(session: DbSession, wanted: PostFilter, now: datetime) -> Select[Any] | None:
    """The public posts ``wanted`` describes, unordered; None when nothing can match."""
    query = card_query().where(Post.visible_clause(now))
    if wanted.tags:
        tag_ids = list(
            session.scalars(select(Tag.id).where(Tag.slug.in_(wanted.tags), ~Tag.is_internal))
        )
        if not tag_ids or (wanted.tag_mode is TagMode.ALL and len(tag_ids) < len(set(wanted.tags))):
            return None
        tagged = select(PostTag.post_id).where(PostTag.tag_id.in_(tag_ids))
        if wanted.tag_mode is TagMode.ALL:
            tagged = tagged.group_by(PostTag.post_id).having(
                func.count(PostTag.tag_id) == len(tag_ids)
            )
        query = query.where(Post.id.in_(tagged))
    if wanted.author is not None:
        user_id = session.scalar(select(User.id).where(User.slug == wanted.author))
        if user_id is None:
            return None
        query = query.where(
            Post.id.in_(select(PostAuthor.post_id).where(PostAuthor.user_id == user_id))
        )
    if wanted.featured is not None:
        query = query.where(Post.featured.is_(wanted.featured))
    if wanted.published_before is not None:
        query = query.where(Post.published_at < wanted.published_before)
    if wanted.published_after is not None:
        query = query.where(Post.published_at > wanted.published_after)
    return query


def list_posts(
    session: DbSession,
    wanted: PostFilter,
    *,
    now: datetime,
    limit: int,
    page: int | None = None,
    after: Position | None = None,
    remember: Remember = compute,
    search: str | None = None,
) -> Listing:
    """One page of public posts: by number (with a total) or after a cursor position.

    With ``search``, the posts matching it, best first, by number only
    (``content.search``); Invalid when it holds no word to look for.
    Raises NotFound for a page number past the end (page 1 always exists).
    """
    query = _filtered(session, wanted, now)
    if search is not None:
        every = wanted == PostFilter(order=wanted.order)  # the order is the ranking's own
        return _searched(session, query, search, now=now, limit=limit, page=page or 1, every=every)
    if query is None:
        check_page(page or 1, 0, limit)
        return Listing([], 0 if after is None else None, None)
    newest = wanted.order is Order.NEWEST
    order = (Post.published_at.desc(), Post.id.desc()) if newest else (
        Post.published_at.asc(), Post.id.asc()
    )  # fmt: skip
    total = None
    if after is not None:
        beyond = Post.published_at < after.published_at if newest else (
            Post.published_at > after.published_at
        )  # fmt: skip
        same = and_(
            Post.published_at == after.published_at,
            Post.id < after.id if newest else Post.id > after.id,
        )
        query = query.where(or_(beyond, same))
    else:
        counted = select(func.count()).select_from(query.subquery())
        total = remember(f"filtered:{wanted!r}", lambda: session.scalar(counted) or 0)
        page = page or 1
        check_page(page, total, limit)
        query = query.offset(literal((page - 1) * limit, literal_execute=True))
    # Limits written into the statement rather than bound: PostgreSQL reuses one plan for it.
    rows = cards(session, query.order_by(*order).limit(literal(limit + 1, literal_execute=True)))
    more = len(rows) > limit
    posts = rows[:limit]
    last = posts[-1] if posts and more else None
    position = Position(last.published_at, last.id) if last and last.published_at else None
    return Listing(posts, total, position)


def _searched(
    session: DbSession,
    query: Select[Any] | None,
    search: str,
    *,
    now: datetime,
    limit: int,
    page: int,
    every: bool,
) -> Listing:
    """A page of the posts of ``query`` that match ``search``, best first; ``every``: the query
    is every public post, with no filter."""
    wanted = searching.parse(search)
    if wanted.empty:
        raise Invalid({"q": "holds no word to look for (excluded words alone find nothing)"})
    if query is None:
        check_page(page, 0, limit)
        return Listing([], 0, None)
    # The ranked ids (a hundred at most) in one statement, then the page's cards: the count and
    # the page come from one ranking.
    kind = PostKind.POST if every else None
    ids = searching.ranked_ids(session, wanted, query, now=now, every_public=kind)
    check_page(page, len(ids), limit)
    shown = ids[(page - 1) * limit : page * limit]
    return Listing(cards_in_order(session, shown), len(ids), None)


def public_tags(
    session: DbSession, *, now: datetime, page: int, limit: int
) -> tuple[list[tuple[Tag, int]], int]:
    """Tags readers can see, by name, each with its count of public posts; and the total."""
    visible = select(Tag).where(~Tag.is_internal)
    total = session.scalar(select(func.count()).select_from(visible.subquery())) or 0
    check_page(page, total, limit)
    tags = list(session.scalars(visible.order_by(Tag.name).offset((page - 1) * limit).limit(limit)))
    counts = public_post_counts(session, [t.id for t in tags], now=now)
    return [(tag, counts.get(tag.id, 0)) for tag in tags], total


def public_post_counts(session: DbSession, tag_ids: list[int], *, now: datetime) -> dict[int, int]:
    if not tag_ids:
        return {}
    rows = session.execute(
        select(PostTag.tag_id, func.count())
        .where(PostTag.tag_id.in_(tag_ids), PostTag.published_at <= now)
        .group_by(PostTag.tag_id)
    )
    return dict(rows.all())


def public_authors(
    session: DbSession, *, now: datetime, page: int, limit: int
) -> tuple[list[tuple[User, int]], int]:
    """Staff with at least one public post, by name, with their counts; and the total."""
    counted = (
        select(PostAuthor.user_id, func.count().label("posts"))
        .where(PostAuthor.published_at <= now)
        .group_by(PostAuthor.user_id)
        .subquery()
    )
    total = session.scalar(select(func.count()).select_from(counted)) or 0
    check_page(page, total, limit)
    rows = session.execute(
        select(User, counted.c.posts)
        .join(counted, counted.c.user_id == User.id)
        .order_by(User.name, User.id)
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return [(row[0], int(row[1])) for row in rows], total
