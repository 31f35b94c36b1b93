"""A post's revisions: listed, compared and restored.

Every save keeps one (``content.services.record_revision``); restoring is
itself a save through ``content.services.update_post``, so it keeps the
version check and leaves a revision of its own.  This module depends on
the services, never the other way round.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostRevision
from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession


def post_revisions(session: DbSession, post: Post, *, actor: Actor) -> list[PostRevision]:
    """Every saved revision of ``post``, newest first."""
    require(actor, Action.EDIT_POST, post)
    return list(
        session.scalars(
            select(PostRevision)
            .where(PostRevision.post_id == post.id)
            .order_by(PostRevision.id.desc())
        )
    )


def version_number(session: DbSession, post: Post) -> int:
    """The version staff see: the number of the post's latest revision.

    ``Post.version`` also moves on publishing, scheduling and unpublishing
    (it guards every write against a stale form), which keep no revision;
    the editor and the revisions list both show this number, so they agree.
    """
    latest = session.scalar(
        select(func.max(PostRevision.version)).where(PostRevision.post_id == post.id)
    )
    return post.version if latest is None else latest


def find_revision(session: DbSession, post: Post, revision_id: int) -> PostRevision:
    revision = session.get(PostRevision, revision_id)
    if revision is None or revision.post_id != post.id:
        raise NotFound(f"post {post.id} has no revision {revision_id}")
    return revision


def restore_revision(
    session: DbSession,
    post: Post,
    revision: PostRevision,
    *,
    actor: Actor,
    expected_version: int,
    now: datetime,
) -> Post:
    """Bring back what ``revision`` said, as a new save (itself a revision); status is kept.

    Raises what ``update_post`` raises; a slug now taken by another post is
    derived afresh from the title instead.
    """
    if revision.post_id != post.id:
        raise NotFound(f"post {post.id} has no revision {revision.id}")
    slug_taken = bool(
        session.scalar(
            select(func.count())
            .select_from(Post)
            .where(Post.slug == revision.slug, Post.id != post.id)
        )
    )
    return content.update_post(
        session,
        post,
        actor=actor,
        expected_version=expected_version,
        now=now,
        title=revision.title,
        markdown=revision.markdown,
        tags=revision.tags,
        slug=None if slug_taken else revision.slug,
        excerpt=revision.custom_excerpt,
        featured=revision.featured,
        meta_title=revision.meta_title,
        meta_description=revision.meta_description,
        note=f"Restored version {revision.version}",
    )


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str
    # For long text: unified diff lines; empty for short fields.
    diff: list[str]


COMPARED_FIELDS = (
    "title", "slug", "tags", "custom_excerpt", "featured", "meta_title", "meta_description",
    "markdown",
)  # fmt: skip


def compare_revisions(older: PostRevision, newer: PostRevision) -> list[FieldChange]:
    """What changed from ``older`` to ``newer``, field by field; the body as a line diff."""

    def fields(revision: PostRevision) -> dict[str, Any]:
        return {name: getattr(revision, name) for name in COMPARED_FIELDS}

    return compare_fields(
        fields(older),
        fields(newer),
        before_label=f"version {older.version}",
        after_label=f"version {newer.version}",
    )


def compare_fields(
    before: Mapping[str, Any], after: Mapping[str, Any], *, before_label: str, after_label: str
) -> list[FieldChange]:
    """The ``COMPARED_FIELDS`` that differ between two states of a post (a revision, the saved
    post, an editor's unsaved form); the body as a unified line diff."""

    def text(fields: Mapping[str, Any], name: str) -> str:
        value = fields.get(name)
        if isinstance(value, list):
            return ", ".join(value)
        return "" if value is None else str(value)

    changes = []
    for name in COMPARED_FIELDS:
        old, new = text(before, name), text(after, name)
        if old == new:
            continue
        diff: list[str] = []
        if name == "markdown":
            diff = list(
                difflib.unified_diff(
                    old.splitlines(), new.splitlines(), before_label, after_label, lineterm=""
                )
            )
        changes.append(FieldChange(name, old, new, diff))
    return changes
