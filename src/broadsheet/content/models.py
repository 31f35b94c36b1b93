"""Posts, tags and the ordered links between posts, tags and authors.

The link tables carry a copy of the post's ``published_at`` while the post is
public (NULL otherwise), so that a tag or author archive is one range scan of
one index, newest first, however deep the page.  ``content.services`` keeps
that copy in step (``sync_listing``); the demo's bulk insert (``demo.py``)
writes it directly, by the same rule.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    and_,
    false,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload
from sqlalchemy.orm.strategy_options import _AbstractLoad
from sqlalchemy.sql.elements import ColumnElement

from broadsheet.accounts.models import User
from broadsheet.content.rendering import count_words, reading_minutes
from broadsheet.extensions import Model, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class PostStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"


class PostKind(enum.StrEnum):
    POST = "post"
    PAGE = "page"  # About, Colophon: never in archives or feeds


class Tag(Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @hybrid_property
    def is_internal(self) -> bool:
        """Internal tags (``#…``) organise posts for staff and are never shown to readers."""
        return self.name.startswith("#")

    @is_internal.inplace.expression
    @classmethod
    def _is_internal(cls) -> ColumnElement[bool]:
        return cls.name.startswith("#")

    def __repr__(self) -> str:
        return f"<Tag {self.name}>"


class PostTag(Model):
    __tablename__ = "post_tags"
    __table_args__ = (Index("ix_post_tags_archive", "tag_id", "published_at", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None]

    tag: Mapped[Tag] = relationship(lazy="joined", innerjoin=True)


class PostAuthor(Model):
    __tablename__ = "post_authors"
    __table_args__ = (Index("ix_post_authors_archive", "user_id", "published_at", "post_id"),)

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)


class Post(Model):
    __tablename__ = "posts"
    __table_args__ = (
        # Home page, date archives, feeds, sitemap: public posts newest first.
        Index("ix_posts_listing", "kind", "status", "published_at", "id"),
        Index("ix_posts_scheduled", "status", "published_at"),
        Index("ix_posts_deleted_at", "deleted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[PostKind] = mapped_column(_enum(PostKind), default=PostKind.POST)
    title: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    markdown: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    custom_excerpt: Mapped[str | None] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[PostStatus] = mapped_column(_enum(PostStatus), default=PostStatus.DRAFT)
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    featured: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    feature_image: Mapped[str | None] = mapped_column(String(500))
    meta_title: Mapped[str | None] = mapped_column(String(300))
    meta_description: Mapped[str | None] = mapped_column(String(500))
    # Whether publishing (now, or by the scheduler) emails the post to its subscribers.
    email_on_publish: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Set when moved to the trash (content.trash): gone from the site, the feeds, the APIs
    # and the admin's lists; restorable until the beat task removes it for good.
    deleted_at: Mapped[datetime | None]
    # Bumped on every save; an edit made against an older version is refused.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    tag_links: Mapped[list[PostTag]] = relationship(
        order_by=PostTag.position, cascade="all, delete-orphan", lazy="raise"
    )
    author_links: Mapped[list[PostAuthor]] = relationship(
        order_by=PostAuthor.position, cascade="all, delete-orphan", lazy="raise"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def tags(self) -> list[Tag]:
        return [link.tag for link in self.tag_links]

    @property
    def public_tags(self) -> list[Tag]:
        return [tag for tag in self.tags if not tag.is_internal]

    @property
    def primary_tag(self) -> Tag | None:
        public = self.public_tags
        return public[0] if public else None

    @property
    def authors(self) -> list[User]:
        return [link.user for link in self.author_links]

    @property
    def author_ids(self) -> frozenset[int]:
        """Who wrote it, as the permission check reads it (its author links must be loaded)."""
        return frozenset(link.user_id for link in self.author_links)

    @property
    def is_draft(self) -> bool:
        return self.status is PostStatus.DRAFT

    @property
    def primary_author(self) -> User:
        """The author named first (a post always has one)."""
        return self.author_links[0].user

    @property
    def reading_minutes(self) -> int:
        """Minutes a reader needs, at about 230 words a minute; never less than one."""
        return reading_minutes(count_words(self.markdown))

    def is_visible(self, now: datetime) -> bool:
        """Whether a reader may see this post or page at ``now`` (``visible_clause`` in SQL)."""
        return (
            self.status is PostStatus.PUBLISHED
            and self.deleted_at is None
            and self.published_at is not None
            and self.published_at <= now
        )

    @classmethod
    def visible_clause(
        cls, now: datetime | ColumnElement[Any], kind: PostKind | None = PostKind.POST
    ) -> ColumnElement[bool]:
        """``is_visible`` as SQL, for posts of ``kind`` (None: posts and pages alike)."""
        visible = and_(
            cls.status == PostStatus.PUBLISHED, cls.published_at <= now, cls.deleted_at.is_(None)
        )
        return visible if kind is None else and_(cls.kind == kind, visible)

    def __repr__(self) -> str:
        return f"<Post {self.slug} {self.status}>"


class PostRevision(Model):
    """A snapshot of what a post said after one save; restoring one is another save."""

    __tablename__ = "post_revisions"
    __table_args__ = (Index("ix_post_revisions_post", "post_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    # The post's version this snapshot was saved as.
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(200), default="")
    title: Mapped[str] = mapped_column(String(300))
    slug: Mapped[str] = mapped_column(String(200))
    markdown: Mapped[str] = mapped_column(Text, default="")
    custom_excerpt: Mapped[str | None] = mapped_column(Text)
    featured: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    meta_title: Mapped[str | None] = mapped_column(String(300))
    meta_description: Mapped[str | None] = mapped_column(String(500))
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)

    author: Mapped[User | None] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<PostRevision post={self.post_id} v{self.version}>"


def with_links() -> tuple[_AbstractLoad, ...]:
    """Loader options for showing posts: tags and authors in two queries, whatever the count."""
    return (
        selectinload(Post.tag_links).joinedload(PostTag.tag),
        selectinload(Post.author_links).joinedload(PostAuthor.user),
    )
