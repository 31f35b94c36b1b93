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

from sqlalchemy import Integer, Select, and_, bindparam, func, literal, or_, select, tuple_
from sqlalchemy.orm import aliased

from broadsheet.accounts.models import User
from broadsheet.content.cards import CARD_WIDTH, Byline, PostCard, TagRef, card, card_query, cards
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
    # Limits are written into the statement, not bound: PostgreSQL can then reuse one plan
    # for every request (a bound LIMIT makes it plan each run anew).
    per_page = bindparam("per_page", type_=Integer(), literal_execute=True)
    page = cards_from.where(*where).order_by(*newest_first).limit(per_page)
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


def public_byline(session: DbSession, slug: str, *, now: datetime) -> Byline:
    """A staff member readers may look up: one with a public post.

    The site's author page and the Content API both ask here, so they agree:
    NotFound for nobody, for staff who have published nothing, and so for a
    deactivated account without public posts (one with posts keeps its byline
    and its page).  One step into the archive's index, never a count.
    """
    published = (
        select(PostAuthor.post_id)
        .where(PostAuthor.user_id == User.id, PostAuthor.published_at <= now)
        .exists()
    )
    row = session.execute(
        select(User.id, User.slug, User.name, User.email, User.bio).where(
            User.slug == slug, published
        )
    ).first()
    if row is None:
        raise NotFound(f"no author {slug!r}")
    return Byline(*row)


def public_author(
    session: DbSession, slug: str, *, now: datetime, remember: Remember = compute
) -> PublicAuthor:
    """``public_byline`` and how many public posts they have: their archive's total, kept
    through ``remember`` under the same name as the archive's own."""
    user = public_byline(session, slug, now=now)
    listing, params = _listing("post_authors"), {"now": now, "owner": user.id}
    total = remember(
        f"post_authors:{user.id}:total", lambda: session.scalar(listing.count, params) or 0
    )
    return PublicAuthor(user, total)


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


@dataclass(frozen=True)
class PostPage:
    """A post or page as its own page shows it: the card, and the public posts just older
    and just newer (none for a standalone page)."""

    post: PostCard
    older: PostLink | None
    newer: PostLink | None


def public_post_page(session: DbSession, slug: str, *, now: datetime) -> PostPage:
    """A published post or page by slug, with its neighbours: one statement.

    Each neighbour is one step along the listing index.  Raises NotFound like
    ``public_post``.
    """
    row = session.connection().execute(_post_page(), {"now": now, "key": slug}).first()
    if row is None:
        raise NotFound("no such post")
    older = PostLink(*row[CARD_WIDTH : CARD_WIDTH + 3]) if row[CARD_WIDTH] else None
    newer = PostLink(*row[CARD_WIDTH + 3 :]) if row[CARD_WIDTH + 3] else None
    return PostPage(card(row), older, newer)


@cache
def _post_page() -> Select[Any]:
    older, newer = aliased(Post, name="older"), aliased(Post, name="newer")
    return (
        card_query()
        .add_columns(older.slug, older.title, older.updated_at)
        .add_columns(newer.slug, newer.title, newer.updated_at)
        .join_from(Post, older, older.id == _neighbour(older=True), isouter=True)
        .join_from(Post, newer, newer.id == _neighbour(older=False), isouter=True)
        .where(Post.visible_clause(bindparam("now"), kind=None), Post.slug == bindparam("key"))
    )


def _neighbour(*, older: bool) -> Any:
    """The id of the public post just older (or newer) than the outer query's post, when that
    is a post; the comparison is written so that PostgreSQL walks the listing index."""
    other = aliased(Post)
    when, ident = Post.published_at, Post.id
    if older:
        step = (
            other.published_at <= when,
            or_(other.published_at < when, and_(other.published_at == when, other.id < ident)),
        )
        order = (other.published_at.desc(), other.id.desc())
    else:
        step = (
            other.published_at >= when,
            or_(other.published_at > when, and_(other.published_at == when, other.id > ident)),
        )
        order = (other.published_at.asc(), other.id.asc())
    return (
        select(other.id)
        .where(Post.kind == PostKind.POST, other.visible_clause(bindparam("now")), *step)
        .order_by(*order)
        .limit(literal(1, literal_execute=True))
        .correlate(Post)
        .scalar_subquery()
    )
