"""The editor's live work: a preview as the writer types, autosaved drafts, and save conflicts.

A preview renders with the same Markdown and sanitiser as publishing, for
someone who may write the post.  Autosave keeps drafts only: a post that
readers see (or that the scheduler will publish) changes only when its
writer saves it on purpose, so half a sentence never goes out.  A save made
against an old version is refused with what the saved post says beside
what the writer has, so they can take it or save theirs over it knowingly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostRevision
from broadsheet.content.rendering import count_words, reading_minutes, render_markdown
from broadsheet.content.revisions import COMPARED_FIELDS, FieldChange, compare_fields
from broadsheet.content.staff_queries import staff_post
from broadsheet.errors import Conflict, Invalid
from broadsheet.extensions import DbSession

AUTOSAVE_NOTE = "Autosaved"
# One person's autosaves within the same stretch of this long (on the clock: 12:00 to 12:10,
# 12:10 to 12:20…) are one revision, the last of them, not one per pause in typing: an hour of
# writing leaves about six.  A deliberate save or someone else's save keeps its own as ever.
AUTOSAVE_REVISION_SPAN = timedelta(minutes=10)
# A draft autosaved before its writer gave it a title is saved under this one.
UNTITLED = "Untitled"


@dataclass(frozen=True)
class Preview:
    html: str
    words: int
    minutes: int


@dataclass(frozen=True)
class EditorFields:
    """What the editor's form holds, as the content services take it (empty means none)."""

    title: str
    markdown: str
    tags: list[str]
    slug: str | None = None
    excerpt: str | None = None
    featured: bool = False
    meta_title: str | None = None
    meta_description: str | None = None
    email_on_publish: bool = False

    def compared(self) -> dict[str, Any]:
        """The fields under the names ``revisions.compare_fields`` reads."""
        return {
            "title": self.title.strip(),
            "slug": self.slug or "",
            "tags": [name.strip() for name in self.tags],
            "custom_excerpt": self.excerpt,
            "featured": self.featured,
            "meta_title": self.meta_title,
            "meta_description": self.meta_description,
            "markdown": self.markdown,
        }


class EditConflict(Conflict):
    """A save refused because the post was saved since the writer's version.

    Carries the saved post's fields and version, and what differs from the
    writer's, so the editor can show both and let the writer choose.
    """

    def __init__(
        self, message: str, *, version: int, saved: dict[str, Any], changes: list[FieldChange]
    ) -> None:
        super().__init__(message)
        self.version = version
        self.saved = saved
        self.changes = changes


def preview(session: DbSession, markdown: str, *, actor: Actor, post_id: int | None) -> Preview:
    """``markdown`` rendered as readers would get it, with its word count and reading time.

    Only for someone who may edit post ``post_id`` (None: who may write a new
    post); raises NotFound or Forbidden.  Reads and writes nothing else.
    """
    if post_id is None:
        require(actor, Action.CREATE_POST)
    else:
        staff_post(session, post_id, actor=actor)
    words = count_words(markdown)
    return Preview(html=render_markdown(markdown).html, words=words, minutes=reading_minutes(words))


def saved_fields(post: Post) -> dict[str, Any]:
    """The post's fields as the editor's form names them, to put back into it."""
    return {
        "title": post.title,
        "slug": post.slug,
        "markdown": post.markdown,
        "tags": ", ".join(tag.name for tag in post.tags),
        "excerpt": post.custom_excerpt or "",
        "featured": post.featured,
        "meta_title": post.meta_title or "",
        "meta_description": post.meta_description or "",
    }


def check_unchanged_since(
    session: DbSession, post_id: int, fields: EditorFields, *, actor: Actor, expected_version: int
) -> None:
    """Raise EditConflict, with the saved post beside ``fields``, when post ``post_id`` was
    saved since ``expected_version`` (a save refused without JavaScript asks it again, to
    show the difference); reads only.  Raises NotFound or Forbidden for who may not edit it."""
    _check_unchanged_since(staff_post(session, post_id, actor=actor), expected_version, fields)


def _check_unchanged_since(post: Post, expected_version: int, fields: EditorFields) -> None:
    try:
        content.check_version(
            post,
            expected_version,
            refused="Your text is kept here: compare it with the saved version below, then "
            "keep yours (saving it over theirs) or take theirs.",
        )
    except Conflict as conflict:
        saved = {name: getattr(post, name) for name in COMPARED_FIELDS}
        saved["tags"] = [tag.name for tag in post.tags]
        mine = fields.compared()
        if not fields.slug:  # left empty, the slug follows the title: not a difference
            mine["slug"] = post.slug
        raise EditConflict(
            conflict.message,
            version=post.version,
            saved=saved_fields(post),
            changes=compare_fields(
                saved,
                mine,
                before_label=f"saved (version {post.version})",
                after_label="yours",
            ),
        ) from None


def save_from_editor(
    session: DbSession,
    post_id: int | None,
    fields: EditorFields,
    *,
    actor: User,
    expected_version: int,
    automatic: bool,
    now: datetime,
) -> Post:
    """Save what the editor holds, without publishing or scheduling anything; flushes only.

    ``post_id`` None creates a draft by ``actor`` (an autosave of a post
    without a title yet names it ``UNTITLED``).  An ``automatic`` save keeps
    drafts only (Invalid for a post that is published or scheduled), and its
    revision replaces the previous one when that was this person's autosave
    in the same ``AUTOSAVE_REVISION_SPAN``.  Raises EditConflict when the
    post was saved since ``expected_version``, with both versions to
    compare; Forbidden, NotFound or Invalid as ``update_post`` does.
    """
    title = fields.title if fields.title.strip() or not automatic else UNTITLED
    post_fields: dict[str, Any] = {
        "title": title,
        "markdown": fields.markdown,
        "tags": fields.tags,
        "slug": fields.slug,
        "excerpt": fields.excerpt,
        "featured": fields.featured,
        "meta_title": fields.meta_title,
        "meta_description": fields.meta_description,
        "email_on_publish": fields.email_on_publish,
    }
    if post_id is None:
        post = content.create_post(session, actor=actor, authors=[actor], now=now, **post_fields)
        if automatic:
            _note_autosave(session, post)
        return post
    post = staff_post(session, post_id, actor=actor)
    if automatic and not post.is_draft:
        raise Invalid(
            {"status": f"a {post.status.value} post is not saved automatically; save it yourself"}
        )
    _check_unchanged_since(post, expected_version, fields)
    note = AUTOSAVE_NOTE if automatic else ""
    content.update_post(
        session, post, actor=actor, expected_version=expected_version, now=now, note=note,
        **post_fields,
    )  # fmt: skip
    if automatic and post.version != expected_version:  # it changed, so a revision was kept
        _merge_autosaves(session, post, actor=actor, now=now)
    return post


def _note_autosave(session: DbSession, post: Post) -> None:
    """Mark a new post's first revision as an autosave, so the next autosave may replace it."""
    first = session.scalar(select(PostRevision).where(PostRevision.post_id == post.id))
    if first is not None:
        first.note = AUTOSAVE_NOTE
        session.flush()


def _merge_autosaves(session: DbSession, post: Post, *, actor: User, now: datetime) -> None:
    """Drop the revision before this autosave's when it was the same person's autosave in the
    same span of the clock."""
    latest, *earlier = session.scalars(
        select(PostRevision)
        .where(PostRevision.post_id == post.id)
        .order_by(PostRevision.id.desc())
        .limit(2)
    )
    if latest.version != post.version or not earlier:
        return  # only the email choice changed: no revision was kept
    previous = earlier[0]
    if (
        previous.note == AUTOSAVE_NOTE
        and previous.author_id == actor.id
        and _span(previous.created_at) == _span(now)
    ):
        session.delete(previous)
        session.flush()


def _span(moment: datetime) -> int:
    return int(moment.timestamp() // AUTOSAVE_REVISION_SPAN.total_seconds())
