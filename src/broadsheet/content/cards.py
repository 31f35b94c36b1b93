"""What readers' pages show of a post, read as rows (SQLAlchemy Core) rather than ORM objects.

The public pages, the feeds and the Content API only read: building ORM
objects (identity map, loader options, attribute instrumentation) cost them
about half their time.  Here a post is a frozen ``PostCard`` made from one
row that carries its public tags and its authors too (aggregated as JSON in
the same statement: a page of cards is one round trip); it answers the same
attributes the templates, the feeds and the API's schemas ask of a ``Post``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, Select, bindparam, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

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


class _JsonRows(FunctionElement[Any]):
    """The rows an aggregate sees, as one JSON array of arrays of ``clauses`` (``json_agg``
    on PostgreSQL, ``json_group_array`` on SQLite); NULL or ``[]`` when there are none."""

    type = JSON()
    name = "json_rows"
    inherit_cache = True


@compiles(_JsonRows, "postgresql")
def _json_rows_postgresql(element: _JsonRows, compiler: Any, **kw: Any) -> str:
    return f"json_agg(json_build_array({compiler.process(element.clauses, **kw)}))"


@compiles(_JsonRows)
def _json_rows_sqlite(element: _JsonRows, compiler: Any, **kw: Any) -> str:
    return f"json_group_array(json_array({compiler.process(element.clauses, **kw)}))"


def _tags_column() -> Any:
    """A post's public tags as ``[position, id, name, slug, description]`` rows."""
    link, tag = aliased(PostTag), aliased(Tag)
    return (
        select(_JsonRows(link.position, tag.id, tag.name, tag.slug, tag.description))
        .select_from(link)
        .join(tag, tag.id == link.tag_id)
        .where(link.post_id == Post.id, ~tag.is_internal)
        .correlate(Post)
        .scalar_subquery()
        .label("card_tags")
    )


def _authors_column() -> Any:
    """A post's authors as ``[position, id, name, slug, bio, email]`` rows."""
    link, user = aliased(PostAuthor), aliased(User)
    return (
        select(_JsonRows(link.position, user.id, user.name, user.slug, user.bio, user.email))
        .select_from(link)
        .join(user, user.id == link.user_id)
        .where(link.post_id == Post.id)
        .correlate(Post)
        .scalar_subquery()
        .label("card_authors")
    )


# The columns a card is made of, in ``_card``'s order: the post's own, then its public tags
# and its authors, aggregated beside it so that a page of cards is one statement.
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
    _tags_column(),
    _authors_column(),
)
CARD_WIDTH = len(CARD_COLUMNS)


def card_query() -> Select[Any]:
    return cast("Select[Any]", select(*CARD_COLUMNS))


def cards(
    session: DbSession, query: Select[Any], params: dict[str, Any] | None = None
) -> list[PostCard]:
    """The posts ``query`` (a ``card_query``) selects, in its order, each with its tags and
    authors: one statement whatever the count."""
    # Straight on the connection: rows need none of the ORM session's execution machinery.
    return [card(row) for row in session.connection().execute(query, params)]


def cards_in_order(session: DbSession, ids: Sequence[int]) -> list[PostCard]:
    """The cards of the posts ``ids``, in that order (one statement; none for no ids)."""
    if not ids:
        return []
    query = card_query().where(Post.id.in_(bindparam("card_ids", expanding=True)))
    by_id = {post.id: post for post in cards(session, query, {"card_ids": list(ids)})}
    return [by_id[i] for i in ids if i in by_id]


def card(row: Sequence[Any]) -> PostCard:
    """The card of a row whose first columns are ``CARD_COLUMNS``."""
    (id_, kind, slug, title, excerpt, html, markdown, featured, image, meta_title,
     meta_description, published_at, updated_at, created_at, tags, authors,
     ) = row[:CARD_WIDTH]  # fmt: skip
    return PostCard(
        id_, kind, slug, title, excerpt, html, featured, image, meta_title, meta_description,
        published_at, updated_at, created_at, count_words(markdown),
        tuple(TagRef(i, n, s, d) for _p, i, n, s, d in sorted(tags or ())),
        tuple(Byline(i, s, n, e, b) for _p, i, n, s, b, e in sorted(authors or ())),
    )  # fmt: skip
