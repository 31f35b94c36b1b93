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
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, literal, or_, select, tuple_, union_all

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


@dataclass(frozen=True)
class _Listing:
    """The statements of one shape of listing, built once: values come as bound parameters
    (``now``, ``owner``, ``since``, ``until``, ``per_page``, and ``at``/``at_id`` where a page
    starts), so a request only binds them."""

    count: Select[Any]
    starts: Select[Any]
    first: Select[Any]
    deeper: Select[Any]


@cache
def _listing(source: str, since: bool = False, until: bool = False) -> _Listing:
    """``source``: "posts" (home and date archives) or a link table (a tag's or author's)."""
    now: Any = bindparam("now")
    if source == "posts":
        published, ident = Post.published_at, Post.id
        where: tuple[Any, ...] = (Post.visible_clause(now),)
        where += (Post.published_at >= bindparam("since"),) if since else ()
        where += (Post.published_at < bindparam("until"),) if until else ()
        cards_from = card_query()
    else:
        link, owner = _LINKS[source]
        published, ident = link.published_at, link.post_id
        where = (owner == bindparam("owner"), link.published_at <= now)
        cards_from = card_query().join(link, link.post_id == Post.id)
    newest_first = (published.desc(), ident.desc())
    numbered = (
        select(
            published.label("published_at"),
            ident.label("id"),
            func.row_number().over(order_by=newest_first).label("n"),
        )
        .where(*where)
        .subquery()
    )
    page = cards_from.where(*where).order_by(*newest_first).limit(bindparam("per_page"))
    at = tuple_(bindparam("at", type_=published.type), bindparam("at_id", type_=ident.type))
    return _Listing(
        count=select(func.count(ident)).where(*where),
        starts=(
            select(numbered.c.published_at, numbered.c.id)
            .where((numbered.c.n - 1) % bindparam("per_page") == 0)
            .order_by(numbered.c.n)
        ),
        first=page,
        deeper=page.where(tuple_(published, ident) <= at),
    )


_LINKS: dict[str, tuple[Any, Any]] = {
    "post_tags": (PostTag, PostTag.tag_id),
    "post_authors": (PostAuthor, PostAuthor.user_id),
}


def _seek(
    session: DbSession,
    listing: _Listing,
    params: dict[str, Any],
    *,
    name: str,
    number: int,
    per_page: int,
    allow_empty: bool,
    remember: Remember,
) -> Page[PostCard]:
    """One page of a listing, newest first, found by where it starts rather than by OFFSET.

    The total and where every page starts (one scan of the listing's index) are
    kept under ``name`` through ``remember``; a page is then one range of the index.
    """
    total = remember(f"{name}:total", lambda: session.scalar(listing.count, params) or 0)
    check_page(number, total, per_page, allow_empty=allow_empty)
    params = {**params, "per_page": per_page}
    if number == 1:
        return Page(cards(session, listing.first, params), number, per_page, total)
    starts = remember(
        f"{name}:starts:{per_page}",
        lambda: [[row[0].isoformat(), row[1]] for row in session.execute(listing.starts, params)],
    )
    if number > len(starts):  # the total and the starts were read apart, around a change
        raise NotFound(f"there is no page {number}")
    at, at_id = starts[number - 1]
    params |= {"at": datetime.fromisoformat(at), "at_id": at_id}
    return Page(cards(session, listing.deeper, params), number, per_page, total)


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
    return _seek(
        session,
        _listing("posts", since is not None, until is not None),
        {"now": now, "since": since, "until": until},
        name=f"posts:{since}:{until}",
        number=number,
        per_page=per_page,
        allow_empty=allow_empty,
        remember=remember,
    )


def _page_of_links(
    session: DbSession,
    table: str,
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
        _listing(table),
        {"now": now, "owner": owner_id},
        name=f"{table}:{owner_id}",
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
        "post_tags",
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
        "post_authors",
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
    by_id = post_id is not None
    found = cards(
        session,
        _one_post(by_id=by_id, pages=pages),
        {"now": now, "key": post_id if by_id else slug},
    )
    if not found:
        raise NotFound("no such post")
    return found[0]


@cache
def _one_post(*, by_id: bool, pages: bool) -> Select[Any]:
    key = Post.id if by_id else Post.slug
    visible = Post.visible_clause(bindparam("now"), kind=None if pages else PostKind.POST)
    return card_query().where(visible, key == bindparam("key"))


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
    rows = session.connection().execute(
        _neighbours(), {"now": now, "when": post.published_at, "post_id": post.id}
    )
    found = {row.side: PostLink(row.slug, row.title, row.updated_at) for row in rows}
    return found.get("older"), found.get("newer")


@cache
def _neighbours() -> Any:
    when = bindparam("when", type_=Post.published_at.type)
    post_id: Any = bindparam("post_id")
    public = Post.visible_clause(bindparam("now"))
    columns = (Post.slug, Post.title, Post.updated_at)
    older = (
        select(*columns, literal("older").label("side"))
        .where(
            public,
            Post.published_at <= when,
            or_(Post.published_at < when, and_(Post.published_at == when, Post.id < post_id)),
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
            or_(Post.published_at > when, and_(Post.published_at == when, Post.id > post_id)),
        )
        .order_by(Post.published_at, Post.id)
        .limit(1)
        .subquery()
    )
    return union_all(select(older), select(newer))
