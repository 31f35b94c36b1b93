"""The trash: a deleted post waits here, restorable, for ``TRASH_DAYS``, then goes for good.

A post in the trash has ``deleted_at`` set.  It is out of everything a reader
or the APIs see (``Post.visible_clause``, the listing columns) and out of the
admin's lists (``staff_queries``); only this module lists or restores it.
The beat task ``broadsheet.empty_trash`` calls ``empty_trash``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from broadsheet.accounts.permissions import Action, Actor, can
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostAuthor, with_links
from broadsheet.content.staff_queries import staff_post
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession

TRASH_DAYS = 30


def purge_after(post: Post) -> datetime | None:
    """When the beat task removes ``post`` for good (None: not in the trash)."""
    return None if post.deleted_at is None else post.deleted_at + timedelta(days=TRASH_DAYS)


def move_to_trash(
    session: DbSession, post: Post, *, actor: Actor, expected_version: int, now: datetime
) -> Post:
    """Delete ``post`` to the trash; flushes.  Status and dates are kept for a restore.

    Raises Forbidden (see ``content.services.require_delete``), or Conflict
    when the post changed since ``expected_version``.
    """
    content.require_delete(actor, post)
    content.check_version(post, expected_version)
    if post.deleted_at is None:
        post.deleted_at = now
        post.updated_at = now
        session.flush()
        content.sync_listing(session, [post.id])
    return post


def trashed_posts(session: DbSession, *, actor: Actor) -> list[Post]:
    """The posts in the trash that ``actor`` may restore, most recently deleted first."""
    query = select(Post).where(Post.deleted_at.is_not(None)).options(*with_links())
    if not can(actor, Action.EDIT_ANY_POST):
        query = query.where(
            Post.id.in_(select(PostAuthor.post_id).where(PostAuthor.user_id == actor.id))
        )
    posts = session.scalars(query.order_by(Post.deleted_at.desc(), Post.id.desc())).all()
    return [post for post in posts if content.may_delete(actor, post)]


def post_to_trash(session: DbSession, post_id: int, *, actor: Actor) -> Post:
    """A post ``actor`` may move to the trash, for the page that asks first; raises NotFound
    or Forbidden."""
    post = staff_post(session, post_id, actor=actor)
    content.require_delete(actor, post)
    return post


def trashed_post(session: DbSession, post_id: int, *, actor: Actor) -> Post:
    """One post in the trash that ``actor`` may restore; raises NotFound or Forbidden."""
    post = session.scalar(
        select(Post).where(Post.id == post_id, Post.deleted_at.is_not(None)).options(*with_links())
    )
    if post is None:
        raise NotFound(f"post {post_id} is not in the trash")
    content.require_delete(actor, post)
    return post


def restore_from_trash(session: DbSession, post: Post, *, actor: Actor, now: datetime) -> Post:
    """Bring ``post`` back as it was when deleted (a published one is public again); flushes."""
    content.require_delete(actor, post)
    if post.deleted_at is not None:
        post.deleted_at = None
        post.updated_at = now
        session.flush()
        content.sync_listing(session, [post.id])
    return post


def empty_trash(session: DbSession, *, now: datetime) -> list[int]:
    """Remove for good every post deleted more than ``TRASH_DAYS`` ago; returns their ids."""
    cutoff = now - timedelta(days=TRASH_DAYS)
    expired = session.scalars(
        select(Post).where(Post.deleted_at.is_not(None), Post.deleted_at <= cutoff)
    ).all()
    ids = [post.id for post in expired]
    for post in expired:
        session.delete(post)
    session.flush()
    return ids
