"""Writing and publishing posts: every door calls these functions.

Services flush and never commit; the door that called them commits once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, Actor, can, require
from broadsheet.content.models import (
    Post,
    PostAuthor,
    PostKind,
    PostRevision,
    PostStatus,
    PostTag,
    with_links,
)
from broadsheet.content.redirects import slug_changed
from broadsheet.content.rendering import render_markdown, shorten
from broadsheet.content.tags import find_or_create_tags
from broadsheet.errors import Conflict, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.queue import enqueue_after_commit
from broadsheet.slugs import make_slug, unique_slug
from broadsheet.text import check_single_line

# First path segments the site itself uses: a post cannot take them as its slug.
RESERVED_SLUGS = frozenset(
    {
        "admin", "api", "author", "feed", "feed.json", "healthz", "media", "page", "readyz",
        "robots.txt",
        "search", "sitemap.xml", "static", "subscribe", "tag", "unsubscribe",
    }
)  # fmt: skip
_digits = re.compile(r"^\d+$")


def listing_published_at() -> ColumnElement[Any]:
    """The value the link tables keep: the post's date while it is a public post."""
    return case(
        (
            (Post.status == PostStatus.PUBLISHED)
            & (Post.kind == PostKind.POST)
            & Post.deleted_at.is_(None),
            Post.published_at,
        ),
        else_=None,
    )


def listing_date(
    kind: PostKind, status: PostStatus, published_at: datetime | None
) -> datetime | None:
    """``listing_published_at`` for a post not yet written (a bulk load writes its links'
    copy directly): its date while it is a public post, not in the trash."""
    public = status is PostStatus.PUBLISHED and kind is PostKind.POST
    return published_at if public else None


def sync_listing(session: DbSession, post_ids: Sequence[int]) -> None:
    """Copy each post's public date into its tag and author links (NULL when not public)."""
    if not post_ids:
        return
    for link in (PostTag, PostAuthor):
        session.execute(
            update(link)
            .where(link.post_id.in_(post_ids))
            .values(
                published_at=select(listing_published_at())
                .where(Post.id == link.post_id)
                .scalar_subquery()
            )
            .execution_options(synchronize_session=False)
        )


# What a revision keeps of its post, besides its id, version and tags.
SNAPSHOT_FIELDS = ("title", "slug", "markdown", "custom_excerpt", "featured", "meta_title",
                   "meta_description")  # fmt: skip


def revision_row(
    post_id: int,
    version: int,
    fields: Mapping[str, Any],
    tags: list[str],
    *,
    author_id: int | None,
    now: datetime,
    note: str = "",
) -> dict[str, Any]:
    """A revision as a row: what the post with ``fields`` (``SNAPSHOT_FIELDS``, from a Post or
    from a row about to be written in bulk) says now."""
    return {
        "post_id": post_id,
        "version": version,
        "created_at": now,
        "author_id": author_id,
        "note": note[:200],
        **{name: fields[name] for name in SNAPSHOT_FIELDS},
        "tags": tags,
    }


def snapshot(
    post: Post, tags: list[str], *, author_id: int | None, now: datetime, note: str = ""
) -> PostRevision:
    """What ``post`` says now, as a revision not yet added to any session."""
    fields = {name: getattr(post, name) for name in SNAPSHOT_FIELDS}
    row = revision_row(post.id, post.version, fields, tags, author_id=author_id, now=now, note=note)
    return PostRevision(**row)


def record_revision(
    session: DbSession,
    post: Post,
    tags: list[str],
    *,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> PostRevision:
    """Keep what ``post`` says now as a new revision, by ``actor``; flushes."""
    author_id = actor.id if isinstance(actor, User) else None
    revision = snapshot(post, tags, author_id=author_id, now=now, note=note)
    session.add(revision)
    session.flush()
    return revision


def check_slug(slug: str) -> str | None:
    """Return why ``slug`` cannot name a post, or None."""
    if slug in RESERVED_SLUGS or _digits.match(slug):
        return f"{slug!r} is used by the site itself"
    if make_slug(slug, max_length=200) != slug:
        return "may hold only lower-case letters, digits and hyphens"
    return None


def create_post(
    session: DbSession,
    *,
    title: str,
    markdown: str,
    authors: Sequence[User],
    now: datetime,
    tags: Sequence[str] = (),
    slug: str | None = None,
    status: PostStatus = PostStatus.DRAFT,
    published_at: datetime | None = None,
    kind: PostKind = PostKind.POST,
    excerpt: str | None = None,
    featured: bool = False,
    meta_title: str | None = None,
    meta_description: str | None = None,
    email_on_publish: bool = False,
    actor: Actor,
) -> Post:
    """Add a post (or page), rendered, linked and with its first revision; flushes only.

    A published post without a date is published at ``now``; a scheduled one
    needs a date in the future.  ``actor`` must be allowed to write (and, for
    anything but a draft, to publish) and, below editor, be one of the
    authors.  Raises Forbidden, or Invalid naming every bad field.
    """
    require(actor, Action.CREATE_POST)
    if status is not PostStatus.DRAFT:
        require(actor, Action.PUBLISH_POST)
    if not can(actor, Action.EDIT_ANY_POST) and actor not in authors:
        raise Invalid({"authors": "you can only write posts that you are an author of"})
    errors = _check_fields(title=title, slug=slug, meta_title=meta_title,
                           meta_description=meta_description)  # fmt: skip
    title = title.strip()
    if not authors:
        errors["authors"] = "a post needs at least one author"
    if status is PostStatus.PUBLISHED and published_at is None:
        published_at = now
    if status is PostStatus.PUBLISHED and published_at is not None and published_at > now:
        errors["published_at"] = "is in the future; schedule the post instead"
    if status is PostStatus.SCHEDULED and (published_at is None or published_at <= now):
        errors["published_at"] = "a scheduled post needs a time in the future"
    if errors:
        raise Invalid(errors)
    rendered = render_markdown(markdown)
    post = Post(
        kind=kind,
        title=title,
        slug=unique_slug(
            session, Post.slug, slug or make_slug(title, max_length=200), reserved=RESERVED_SLUGS
        ),
        markdown=markdown,
        html=rendered.html,
        custom_excerpt=excerpt,
        excerpt=shorten(excerpt) if excerpt else rendered.excerpt,
        status=status,
        published_at=published_at,
        created_at=now,
        updated_at=now,
        featured=featured,
        meta_title=meta_title or None,
        meta_description=meta_description or None,
        email_on_publish=email_on_publish,
    )
    tag_rows = find_or_create_tags(session, tags, now=now)
    for position, tag in enumerate(tag_rows):
        post.tag_links.append(PostTag(tag=tag, position=position))
    for position, user in enumerate(dict.fromkeys(authors)):
        post.author_links.append(PostAuthor(user=user, position=position))
    session.add(post)
    session.flush()
    sync_listing(session, [post.id])
    record_revision(session, post, [tag.name for tag in tag_rows], actor=actor, now=now)
    return post


def _check_fields(
    *, title: str, slug: str | None, meta_title: str | None, meta_description: str | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if problem := check_single_line(title, limit=300):
        errors["title"] = problem
    if slug and (problem := check_slug(slug)):
        errors["slug"] = problem
    if meta_title and (problem := check_single_line(meta_title, limit=300)):
        errors["meta_title"] = problem
    if meta_description and len(meta_description) > 500:
        errors["meta_description"] = "must be at most 500 characters"
    return errors


def load_post(session: DbSession, post_id: int) -> Post:
    """A post with its tags and authors, as the editor and the permission check need it."""
    post = session.scalar(select(Post).where(Post.id == post_id).options(*with_links()))
    if post is None:
        raise NotFound(f"there is no post {post_id}")
    return post


def check_version(
    post: Post,
    expected_version: int,
    *,
    refused: str = "Your changes were not saved: copy them, reload the post, and apply them again.",
) -> None:
    """Raise Conflict, saying what was ``refused``, unless the post is still at the version the
    person started from (every write of a post that someone looked at first goes through it)."""
    if post.version != expected_version:
        raise Conflict(
            f"Someone else saved “{post.title}” since you opened it (you started from "
            f"version {expected_version}; it is now at version {post.version}). {refused}"
        )


def _flush_checked(session: DbSession, post: Post, expected_version: int) -> None:
    """Flush; a save that raced past ``check_version`` loses at the UPDATE's version clause."""
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(
            f"Someone else saved “{post.title}” at the same moment (you started from version "
            f"{expected_version}). Your changes were not saved: reload the post and try again."
        ) from None


def _set_tags(session: DbSession, post: Post, names: Sequence[str], *, now: datetime) -> bool:
    """Give ``post`` exactly these tags in this order; True when anything changed."""
    tags = find_or_create_tags(session, names, now=now)
    if [link.tag_id for link in post.tag_links] == [tag.id for tag in tags]:
        return False
    kept = {link.tag_id: link for link in post.tag_links}
    links = []
    for position, tag in enumerate(tags):
        link = kept.pop(tag.id, None) or PostTag(tag=tag)
        link.position = position
        links.append(link)
    post.tag_links = links
    return True


def update_post(
    session: DbSession,
    post: Post,
    *,
    actor: Actor,
    expected_version: int,
    now: datetime,
    title: str,
    markdown: str,
    tags: Sequence[str] = (),
    slug: str | None = None,
    excerpt: str | None = None,
    featured: bool = False,
    meta_title: str | None = None,
    meta_description: str | None = None,
    email_on_publish: bool | None = None,
    note: str = "",
) -> Post:
    """Save an edit made to version ``expected_version`` of ``post``; flushes, never commits.

    Keeps a revision when anything changed.  An empty slug is derived from
    the title; a chosen one must be free.  Raises Forbidden, Invalid naming
    every bad field, or Conflict when the post was saved by someone else
    since ``expected_version`` (nothing is written then).  ``email_on_publish``
    (None keeps it) is the writer's choice to email the post when it goes out;
    changing only that keeps no revision.
    """
    require(actor, Action.EDIT_POST, post)
    check_version(post, expected_version)
    errors = _check_fields(
        title=title, slug=slug, meta_title=meta_title, meta_description=meta_description
    )
    slug = (slug or "").strip()
    if (
        slug
        and "slug" not in errors
        and slug != post.slug
        and slug
        != unique_slug(session, Post.slug, slug, reserved=RESERVED_SLUGS, exclude_id=post.id)
    ):
        errors["slug"] = "is already used by another post"
    if errors:
        raise Invalid(errors)
    if not slug:
        wanted = make_slug(title.strip(), max_length=200)
        slug = unique_slug(session, Post.slug, wanted, reserved=RESERVED_SLUGS, exclude_id=post.id)
    fields: dict[str, Any] = {
        "title": title.strip(),
        "slug": slug,
        "markdown": markdown,
        "custom_excerpt": excerpt or None,
        "featured": featured,
        "meta_title": meta_title or None,
        "meta_description": meta_description or None,
    }
    changed = {name for name, value in fields.items() if getattr(post, name) != value}
    if _set_tags(session, post, tags, now=now):
        changed.add("tags")
    if email_on_publish is not None and post.email_on_publish != email_on_publish:
        post.email_on_publish = email_on_publish
        if not changed:
            post.updated_at = now
            _flush_checked(session, post, expected_version)
            return post
    if not changed:
        return post
    old_slug = post.slug
    for name, value in fields.items():
        setattr(post, name, value)
    rendered = render_markdown(markdown)
    post.html = rendered.html
    post.excerpt = shorten(excerpt) if excerpt else rendered.excerpt
    post.updated_at = now
    _flush_checked(session, post, expected_version)
    if old_slug != post.slug and post.status is PostStatus.PUBLISHED:
        slug_changed(session, post, old_slug, now=now)  # readers may have the old address
    sync_listing(session, [post.id])
    record_revision(session, post, [t.name for t in post.tags], actor=actor, now=now, note=note)
    return post


def publish_post(session: DbSession, post: Post, *, actor: Actor, now: datetime) -> Post:
    """Make ``post`` public now (a scheduled one goes out early); publishing twice is a no-op."""
    require(actor, Action.PUBLISH_POST, post)
    if post.status is PostStatus.PUBLISHED:
        return post
    post.status = PostStatus.PUBLISHED
    post.published_at = now
    post.updated_at = now
    session.flush()
    sync_listing(session, [post.id])
    return post


def schedule_post(
    session: DbSession, post: Post, *, actor: Actor, at: datetime, now: datetime
) -> Post:
    """Have the scheduler publish ``post`` at ``at`` (UTC, in the future); reschedules too."""
    require(actor, Action.PUBLISH_POST, post)
    if at <= now:
        raise Invalid({"publish_at": "must be in the future"})
    if post.status is PostStatus.PUBLISHED and post.is_visible(now):
        raise Invalid({"publish_at": "the post is already public; unpublish it first"})
    post.status = PostStatus.SCHEDULED
    post.published_at = at
    post.updated_at = now
    session.flush()
    sync_listing(session, [post.id])
    if at - now <= PUBLISH_AHEAD:
        _publish_on_time(session, post.id, at)
    return post


# A post due within this long gets a task timed for its moment when it is scheduled; later
# ones get theirs from the minute sweep (``queue_upcoming_posts``) once they come this near.
# The worker holds a timed task unacknowledged until it runs: minutes, never RabbitMQ's
# ``consumer_timeout`` (30 minutes by default).
PUBLISH_AHEAD = timedelta(minutes=10)


def _publish_on_time(session: DbSession, post_id: int, at: datetime) -> None:
    enqueue_after_commit(
        session, "broadsheet.publish_scheduled_post", post_id, at.isoformat(), eta=at
    )


def queue_upcoming_posts(session: DbSession, *, now: datetime, within: timedelta) -> list[int]:
    """Queue a timed publish for each post scheduled in (now, now + within]; returns their ids.

    The minute sweep calls it for the posts scheduled further ahead than
    ``PUBLISH_AHEAD`` when they were scheduled; a second task for the same
    moment is harmless (see ``publish_scheduled_post``).
    """
    due = session.execute(
        select(Post.id, Post.published_at).where(
            Post.status == PostStatus.SCHEDULED,
            Post.published_at > now,
            Post.published_at <= now + within,
        )
    ).all()
    for post_id, at in due:
        if at is not None:  # the query's own condition; for the type checker
            _publish_on_time(session, post_id, at)
    return [post_id for post_id, _ in due]


def publish_scheduled_post(
    session: DbSession, post_id: int, *, at: datetime, now: datetime
) -> bool:
    """Publish post ``post_id`` if it is still scheduled for ``at`` and ``at`` has come.

    False, changing nothing, when it was rescheduled, unscheduled, published
    already (by the sweep, or another task) or deleted: the timed task of an
    earlier schedule is a no-op.  The status check sits in the UPDATE, as in
    ``publish_due_posts``, so the post is published exactly once.
    """
    published = list(
        session.scalars(
            update(Post)
            .where(
                Post.id == post_id,
                Post.status == PostStatus.SCHEDULED,
                Post.published_at == at,
                Post.published_at <= now,
            )
            .values(status=PostStatus.PUBLISHED, version=Post.version + 1, updated_at=now)
            .returning(Post.id)
            .execution_options(synchronize_session=False)
        )
    )
    sync_listing(session, published)
    return bool(published)


def unpublish_post(session: DbSession, post: Post, *, actor: Actor, now: datetime) -> Post:
    """Take ``post`` back to a draft, out of every listing (a scheduled one is unscheduled)."""
    require(actor, Action.PUBLISH_POST, post)
    if post.status is PostStatus.DRAFT:
        return post
    post.status = PostStatus.DRAFT
    post.published_at = None
    post.updated_at = now
    session.flush()
    sync_listing(session, [post.id])
    return post


def may_delete(actor: Actor, post: Post) -> bool:
    """Who may delete (or trash) a post: whoever may edit it; one not a draft needs publish
    rights too, so a contributor deletes only their own drafts."""
    return can(actor, Action.EDIT_POST, post) and (
        post.status is PostStatus.DRAFT or can(actor, Action.PUBLISH_POST, post)
    )


def require_delete(actor: Actor, post: Post) -> None:
    """Raise Forbidden unless ``may_delete``: the editing check first, for its message."""
    require(actor, Action.EDIT_POST, post)
    if not may_delete(actor, post):
        require(actor, Action.PUBLISH_POST, post)


def delete_post(session: DbSession, post: Post, *, actor: Actor, expected_version: int) -> None:
    """Remove ``post`` with its links and revisions; flushes.  A public one needs publish rights.

    Raises Forbidden, or Conflict when it changed since ``expected_version``.
    """
    require_delete(actor, post)
    check_version(post, expected_version)
    session.delete(post)
    session.flush()


def publish_due_posts(session: DbSession, *, now: datetime) -> list[int]:
    """Publish every scheduled post whose time has come; returns the ids this call published.

    Exactly once: the status check sits in the UPDATE itself, so of two
    overlapping runs only one flips each post (PostgreSQL re-checks the row
    after the first commits; SQLite lets one writer in at a time).  A run
    after downtime catches up on everything overdue.
    """
    published = list(
        session.scalars(
            update(Post)
            .where(
                Post.status == PostStatus.SCHEDULED,
                Post.published_at <= now,
                Post.deleted_at.is_(None),  # a post in the trash waits there
            )
            .values(status=PostStatus.PUBLISHED, version=Post.version + 1, updated_at=now)
            .returning(Post.id)
            .execution_options(synchronize_session=False)
        )
    )
    sync_listing(session, published)
    return published
