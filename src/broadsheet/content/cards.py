"""What readers' pages show of a post, read as rows (SQLAlchemy Core) rather than ORM objects.

The public pages, the feeds and the Content API only read: building ORM
objects (identity map, loader options, attribute instrumentation) cost them
about half their time.  Here a post is a frozen ``PostCard`` made from one
row, with its public tags and its authors read for a whole page in one more
statement; it answers the same attributes the templates, the feeds and the
API's schemas ask of a ``Post``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import Select, bindparam, literal, select, union_all

from broadsheet.accounts.models import User, display_name_for
from broadsheet.content.models import (
    Post,
    PostAuthor,
    PostKind,
    PostTag,
    Tag,
)
from broadsheet.content.rendering import count_words, reading_minutes
from broadsheet.extensions import DbSession


@dataclass(frozen=True, slots=True)
class TagRef:
    id: int
    name: str
    slug: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Byline:
    """An author as readers see them: no email leaves this object but through the name rule."""

    id: int
    slug: str
    name: str
    email: str
    bio: str

    @property
    def display_name(self) -> str:
        return display_name_for(self.name, self.email)


@dataclass(frozen=True, slots=True)
class PostCard:
    id: int
    kind: PostKind
    slug: str
    title: str
    excerpt: str
    html: str
    featured: bool
    feature_image: str | None
    meta_title: str | None
    meta_description: str | None
    published_at: datetime | None
    updated_at: datetime
    created_at: datetime
    word_count: int
    public_tags: tuple[TagRef, ...]
    authors: tuple[Byline, ...]

    @property
    def primary_tag(self) -> TagRef | None:
        return self.public_tags[0] if self.public_tags else None

    @property
    def primary_author(self) -> Byline | None:
        return self.authors[0] if self.authors else None

    @property
    def reading_minutes(self) -> int:
        return reading_minutes(self.word_count)


# The columns a card is made of, in ``_card``'s order.
CARD_COLUMNS = (
    Post.id,
    Post.kind,
    Post.slug,
    Post.title,
    Post.excerpt,
    Post.html,
    Post.markdown,
    Post.featured,
    Post.feature_image,
    Post.meta_title,
    Post.meta_description,
    Post.published_at,
    Post.updated_at,
    Post.created_at,
)


def card_query() -> Select[Any]:
    return cast("Select[Any]", select(*CARD_COLUMNS))


def cards(
    session: DbSession, query: Select[Any], params: dict[str, Any] | None = None
) -> list[PostCard]:
    """The posts ``query`` (a ``card_query``) selects, in its order, each with its tags and
    authors: two statements whatever the count."""
    # Straight on the connection: rows need none of the ORM session's execution machinery.
    rows = session.connection().execute(query, params).all()
    if not rows:
        return []
    tags, authors = _links(session, [row[0] for row in rows])
    return [_card(row, tags.get(row[0], ()), authors.get(row[0], ())) for row in rows]


def cards_with(
    session: DbSession, query: Select[Any], params: dict[str, Any] | None = None
) -> list[tuple[PostCard, tuple[Any, ...]]]:
    """``cards``, for a query that selects more after a card's columns (the search's marked
    title and snippet): each card with the rest of its row."""
    rows = session.connection().execute(query, params).all()
    if not rows:
        return []
    tags, authors = _links(session, [row[0] for row in rows])
    width = len(CARD_COLUMNS)
    return [
        (_card(row[:width], tags.get(row[0], ()), authors.get(row[0], ())), tuple(row[width:]))
        for row in rows
    ]


def _card(row: Any, tags: Sequence[TagRef], authors: Sequence[Byline]) -> PostCard:
    (id_, kind, slug, title, excerpt, html, markdown, featured, image, meta_title,
     meta_description, published_at, updated_at, created_at) = row  # fmt: skip
    return PostCard(
        id_, kind, slug, title, excerpt, html, featured, image, meta_title, meta_description,
        published_at, updated_at, created_at, count_words(markdown), tuple(tags), tuple(authors),
    )  # fmt: skip


def _links(
    session: DbSession, ids: list[int]
) -> tuple[dict[int, list[TagRef]], dict[int, list[Byline]]]:
    """The public tags and the authors of the posts ``ids``, in their order, in one statement."""
    found_tags: dict[int, list[TagRef]] = {}
    found_authors: dict[int, list[Byline]] = {}
    row: Any
    for row in session.connection().execute(_links_statement(), {"ids": ids}):
        post_id, what, _position, id_, name, slug, text, email = row
        if what == "t":
            found_tags.setdefault(post_id, []).append(TagRef(id_, name, slug, text))
        else:
            found_authors.setdefault(post_id, []).append(Byline(id_, slug, name, email, text))
    return found_tags, found_authors


@cache
def _links_statement() -> Select[Any]:
    ids: Any = bindparam("ids", expanding=True)
    tags = (
        select(
            PostTag.post_id,
            literal("t").label("what"),
            PostTag.position,
            Tag.id,
            Tag.name,
            Tag.slug,
            Tag.description.label("text"),
            literal("").label("email"),
        )
        .join(Tag, Tag.id == PostTag.tag_id)
        .where(PostTag.post_id.in_(ids), ~Tag.is_internal)
    )
    authors = (
        select(
            PostAuthor.post_id,
            literal("a").label("what"),
            PostAuthor.position,
            User.id,
            User.name,
            User.slug,
            User.bio.label("text"),
            User.email,
        )
        .join(User, User.id == PostAuthor.user_id)
        .where(PostAuthor.post_id.in_(ids))
    )
    both = union_all(tags, authors).subquery()
    return select(both).order_by(both.c.post_id, both.c.what, both.c.position, both.c.id)
