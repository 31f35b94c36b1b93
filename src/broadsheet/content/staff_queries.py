"""The staff's read side: the admin's post list, one post to work on, and the dashboard.

Each function takes the actor and decides what they may see: staff below
editor see only the posts they write.  Each answers with a fixed number of
queries whatever the page holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, Actor, can, require
from broadsheet.content import search as searching
from broadsheet.content.models import Post, PostAuthor, PostKind, PostStatus, PostTag, with_links
from broadsheet.content.paging import Page, check_page
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession

DASHBOARD_ROWS = 5


def _visible_to(query: Select[Any], actor: Actor) -> Select[Any]:
    """What ``actor`` may work on, out of the trash (``content.trash`` lists that)."""
    query = query.where(Post.deleted_at.is_(None))
    if can(actor, Action.EDIT_ANY_POST):
        return query
    own = select(PostAuthor.post_id).where(PostAuthor.user_id == actor.id)
    return query.where(Post.id.in_(own))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def staff_post(session: DbSession, post_id: int, *, actor: Actor) -> Post:
    """One post or page, of any status, that ``actor`` may edit; with its tags and authors.

    Raises NotFound when there is no such post, Forbidden when it is not theirs to edit.
    """
    post = session.scalar(
        select(Post).where(Post.id == post_id, Post.deleted_at.is_(None)).options(*with_links())
    )
    if post is None:
        raise NotFound(f"there is no post {post_id}")
    require(actor, Action.EDIT_POST, post)
    return post


def staff_member(session: DbSession, slug: str) -> User:
    """A staff member by their address slug, whatever they have published (for filters)."""
    user = session.scalar(select(User).where(User.slug == slug))
    if user is None:
        raise NotFound(f"no author {slug!r}")
    return user


def staff_posts(
    session: DbSession,
    *,
    actor: Actor,
    number: int = 1,
    per_page: int = 25,
    status: PostStatus | None = None,
    tag_id: int | None = None,
    author_id: int | None = None,
    search: str = "",
    now: datetime,
) -> Page:
    """Posts and pages the actor may work on, last edited first, filtered as asked.

    ``search`` looks through every word of drafts, scheduled and published
    posts alike (``content.search``), best match first; text with no word in
    it is looked for in titles.
    """
    query = _visible_to(select(Post), actor)
    if status is not None:
        query = query.where(Post.status == status)
    if tag_id is not None:
        query = query.where(Post.id.in_(select(PostTag.post_id).where(PostTag.tag_id == tag_id)))
    if author_id is not None:
        query = query.where(
            Post.id.in_(select(PostAuthor.post_id).where(PostAuthor.user_id == author_id))
        )
    query = query.order_by(Post.updated_at.desc(), Post.id.desc())
    wanted = searching.parse(search)
    if not wanted.empty:
        query = searching.ranked(session, wanted, query, now=now)
    elif search.strip():
        query = query.where(Post.title.ilike(f"%{_escape_like(search.strip())}%", escape="\\"))
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    check_page(number, total, per_page)
    posts = list(
        session.scalars(
            query.offset((number - 1) * per_page).limit(per_page).options(*with_links())
        )
    )
    return Page(posts, number, per_page, total)


@dataclass(frozen=True)
class Dashboard:
    recent: list[Post]
    drafts: list[Post]
    scheduled: list[Post]
    counts: dict[PostStatus, int]


def dashboard(session: DbSession, *, actor: Actor) -> Dashboard:
    """What a staff member sees first: latest posts, drafts, what is scheduled, and counts."""
    posts = _visible_to(select(Post).where(Post.kind == PostKind.POST), actor)

    def first(query: Select[Any]) -> list[Post]:
        return list(session.scalars(query.limit(DASHBOARD_ROWS).options(*with_links())))

    counted = posts.with_only_columns(Post.status, func.count()).group_by(Post.status)
    counts = dict.fromkeys(PostStatus, 0)
    for status, count in session.execute(counted):
        counts[PostStatus(status)] = count
    return Dashboard(
        recent=first(
            posts.where(Post.status == PostStatus.PUBLISHED).order_by(
                Post.published_at.desc(), Post.id.desc()
            )
        ),
        drafts=first(
            posts.where(Post.status == PostStatus.DRAFT).order_by(
                Post.updated_at.desc(), Post.id.desc()
            )
        ),
        scheduled=first(
            posts.where(Post.status == PostStatus.SCHEDULED).order_by(Post.published_at, Post.id)
        ),
        counts=counts,
    )
