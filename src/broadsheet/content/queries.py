"""The read side: what readers may see, page by page.

Pages are read as rows, not ORM objects (``cards``): a page of a listing is
one statement for its posts and one for their tags and authors, whatever
the page holds; and nothing a reader must not see leaves here: drafts,
scheduled posts, pages (in listings) and internal tags.

Deep pages cost what the first does: a listing is walked by position
(published_at, id) along its index, never by OFFSET.  Where each page starts
is read once, for all pages at once, in one scan of the index, and kept with
the listing's total for as long as the content is unchanged, through the
``Remember`` callers pass (the site passes the page cache's, which keeps
values per content generation, even with the page cache off on PostgreSQL).
Without one (staff, or the cache off on SQLite) the scan runs each time.

Listings may be asked to treat an empty first page as missing
(``allow_empty=False``): the public site does, so that a tag used only by
drafts, or a staff member who has published nothing, has no page at all.

Beside it: ``paging`` (a page and which numbers exist), ``listing`` (the
Content API's filtered lists), ``sitemap``
(slugs and dates only) and ``staff_queries`` (what staff may work on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, func, literal, or_, select, tuple_, union_all

from broadsheet.accounts.models import User
from broadsheet.content.cards import Byline, PostCard, TagRef, card_query, cards
from broadsheet.content.models import Post, PostAuthor, PostKind, PostTag, Tag
from broadsheet.content.paging import Page, Remember, check_page, compute
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession

__all__ = ["Byline", "Page", "PostCard", "PostLink", "Remember", "TagRef", "compute"]


@dataclass(frozen=True)
class PostLink:
    """Enough of a post or page to link to it."""

    slug: str
    title: str
    updated_at: datetime


def _seek(
    session: DbSession,
    *,
    name: str,
    where: tuple[Any, ...],
    position: tuple[Any, Any],
    source: Select[Any],
    number: int,
    per_page: int,
    allow_empty: bool,
    remember: Remember,
) -> Page[PostCard]:
    """One page of a listing, newest first, found by where it starts rather than by OFFSET.

    ``source`` selects the cards (``card_query``, joined as needed) under ``where``;
    ``position`` is the (published_at, id) pair the listing's index is ordered by.
    """
    published, ident = position
    total = remember(
        f"{name}:total", lambda: session.scalar(select(func.count(ident)).where(*where)) or 0
    )
    check_page(number, total, per_page, allow_empty=allow_empty)
    query = source.where(*where)
    if number > 1:
        starts = remember(
            f"{name}:starts:{per_page}",
            lambda: _page_starts(session, where, position, per_page),
        )
        if number > len(starts):  # the total and the starts were read apart, around a change
            raise NotFound(f"there is no page {number}")
        at, at_id = starts[number - 1]
        query = query.where(tuple_(published, ident) <= tuple_(datetime.fromisoformat(at), at_id))
    query = query.order_by(published.desc(), ident.desc()).limit(per_page)
    return Page(cards(session, query), number, per_page, total)


def _page_starts(
    session: DbSession, where: tuple[Any, ...], position: tuple[Any, Any], per_page: int
) -> list[list[Any]]:
    """Where each page of a listing starts, as [published_at (ISO), id]: one index scan."""
    published, ident = position
    numbered = (
        select(
            published.label("published_at"),
            ident.label("id"),
            func.row_number().over(order_by=(published.desc(), ident.desc())).label("n"),
        )
        .where(*where)
        .subquery()
    )
    rows = session.execute(
        select(numbered.c.published_at, numbered.c.id)
        .where((numbered.c.n - 1) % per_page == 0)
        .order_by(numbered.c.n)
    )
    return [[row[0].isoformat(), row[1]] for row in rows]


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
) -> Page[PostCard]:
    where: tuple[Any, ...] = (Post.visible_clause(now),)
    if since is not None:
        where += (Post.published_at >= since,)
    if until is not None:
        where += (Post.published_at < until,)
    return _seek(
        session,
        name=f"posts:{since}:{until}",
        where=where,
        position=(Post.published_at, Post.id),
        source=card_query(),
        number=number,
        per_page=per_page,
        allow_empty=allow_empty,
        remember=remember,
    )


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
) -> Page[PostCard]:
    """A tag's or an author's archive: a range of the link table's own index, then the posts."""
    return _seek(
        session,
        name=f"{link.__tablename__}:{owner_id}",
        where=(owner_column == owner_id, link.published_at <= now),
        position=(link.published_at, link.post_id),
        source=card_query().join(link, link.post_id == Post.id),
        number=number,
        per_page=per_page,
        allow_empty=allow_empty,
        remember=remember,
    )


def home_page(
    session: DbSession,
    *,
    now: datetime,
    number: int,
    per_page: int,
    remember: Remember = compute,
) -> Page[PostCard]:
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
) -> Page[PostCard]:
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


def public_tag(session: DbSession, slug: str) -> TagRef:
    row = session.execute(
        select(Tag.id, Tag.name, Tag.slug, Tag.description).where(Tag.slug == slug)
    ).first()
    if row is None or row.name.startswith("#"):  # internal (Tag.is_internal)
        raise NotFound(f"no tag {slug!r}")
    return TagRef(*row)


def tag_archive(
    session: DbSession,
    tag: TagRef,
    *,
    now: datetime,
    number: int,
    per_page: int,
    allow_empty: bool = True,
    remember: Remember = compute,
) -> Page[PostCard]:
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
    user: Byline
    post_count: int


def public_author(session: DbSession, slug: str, *, now: datetime) -> PublicAuthor:
    """A staff member readers may look up: one with a public post, and how many they have.

    The site's author page and the Content API both ask here, so they agree:
    NotFound for nobody, for staff who have published nothing, and so for a
    deactivated account without public posts (one with posts keeps its byline
    and its page).
    """
    row = session.execute(
        select(User.id, User.slug, User.name, User.email, User.bio, func.count(PostAuthor.post_id))
        .join(PostAuthor, PostAuthor.user_id == User.id)
        .where(User.slug == slug, PostAuthor.published_at <= now)
        .group_by(User.id, User.slug, User.name, User.email, User.bio)
    ).first()
    if row is None:
        raise NotFound(f"no author {slug!r}")
    return PublicAuthor(Byline(*row[:5]), int(row[5]))


def author_archive(
    session: DbSession,
    user: Byline,
    *,
    now: datetime,
    number: int,
    per_page: int,
    allow_empty: bool = True,
    remember: Remember = compute,
) -> Page[PostCard]:
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
) -> PostCard:
    """A published post (or page, unless ``pages`` is false) a reader may open, by slug or id.

    The site opens posts and pages by slug; the Content API posts only, by
    either.  Raises NotFound for anything else.
    """
    query = card_query().where(Post.visible_clause(now, kind=None if pages else PostKind.POST))
    query = (
        query.where(Post.id == post_id) if post_id is not None else query.where(Post.slug == slug)
    )
    found = cards(session, query)
    if not found:
        raise NotFound("no such post")
    return found[0]


def public_pages(session: DbSession, *, now: datetime) -> list[PostLink]:
    """Published standalone pages (About, Colophon), oldest first: the site's menu."""
    rows = session.execute(
        select(Post.slug, Post.title, Post.updated_at)
        .where(Post.visible_clause(now, kind=PostKind.PAGE))
        .order_by(Post.published_at, Post.id)
    )
    return [PostLink(slug, title, updated_at) for slug, title, updated_at in rows]


def neighbours(
    session: DbSession, post: PostCard, *, now: datetime
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
