"""Tags: found or made while writing; renamed, described and merged by editors and above.

Services flush and never commit; the door that called them commits once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from slugify import slugify
from sqlalchemy import delete, func, select, update

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content.models import Post, PostTag, Tag
from broadsheet.errors import Conflict, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.slugs import make_slug

MAX_TAG_NAME = 100
MAX_DESCRIPTION = 2000


def find_or_create_tags(session: DbSession, names: Iterable[str], *, now: datetime) -> list[Tag]:
    """The tags named, in the order given, creating the missing ones; duplicates dropped."""
    wanted: list[str] = []
    for raw in names:
        name = " ".join(raw.split())
        if name and name.lower() not in (w.lower() for w in wanted):
            wanted.append(name)
    if bad := [n for n in wanted if len(n) > MAX_TAG_NAME]:
        raise Invalid({"tags": f"{bad[0][:20]}… is longer than {MAX_TAG_NAME} characters"})
    if bad := [n for n in wanted if not slugify(n.lstrip("#"))]:
        raise Invalid({"tags": f"{bad[0]!r} has no letter or digit to make an address from"})
    slugs = {name: make_slug(name) for name in wanted}
    existing = {
        tag.slug: tag for tag in session.scalars(select(Tag).where(Tag.slug.in_(slugs.values())))
    }
    tags: list[Tag] = []
    for name in wanted:
        tag = existing.get(slugs[name])
        if tag is None:
            tag = Tag(name=name, slug=slugs[name], description="", created_at=now)
            session.add(tag)
            existing[tag.slug] = tag
        if tag not in tags:  # "C" and "C++" share an address, so they are one tag
            tags.append(tag)
    session.flush()
    return tags


def find_tag(session: DbSession, tag_id: int, *, actor: Actor) -> Tag:
    """A tag to manage, internal ones too; Forbidden below editor, NotFound when missing."""
    require(actor, Action.MANAGE_TAGS)
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise NotFound(f"there is no tag {tag_id}")
    return tag


def rename_tag(session: DbSession, tag: Tag, name: str, *, actor: Actor) -> Tag:
    """Give ``tag`` a new name and the slug derived from it.

    Raises Invalid for an empty or overlong name and Conflict when another
    tag already has that name or slug (merge the two instead).
    """
    require(actor, Action.MANAGE_TAGS)
    name = " ".join(name.split())
    if not name or len(name) > MAX_TAG_NAME:
        raise Invalid({"name": f"must be 1 to {MAX_TAG_NAME} characters"})
    slug = make_slug(name)
    clash = session.scalar(
        select(Tag).where(
            Tag.id != tag.id, (func.lower(Tag.name) == name.lower()) | (Tag.slug == slug)
        )
    )
    if clash is not None:
        raise Conflict(f"The tag “{clash.name}” already exists; merge the two tags instead.")
    tag.name = name
    tag.slug = slug
    session.flush()
    return tag


def describe_tag(session: DbSession, tag: Tag, description: str, *, actor: Actor) -> Tag:
    """Set the text shown at the top of the tag's archive."""
    require(actor, Action.MANAGE_TAGS)
    description = description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise Invalid({"description": f"must be at most {MAX_DESCRIPTION} characters"})
    tag.description = description
    session.flush()
    return tag


def merge_tags(session: DbSession, source: Tag, target: Tag, *, actor: Actor) -> Tag:
    """Move every post of ``source`` onto ``target`` and delete ``source``; returns ``target``.

    A post that had both keeps one link.  The archive dates travel with the
    links, so no listing needs rebuilding.  Each moved post's version is
    bumped, so an editor still holding the old tag list cannot bring it back.
    """
    require(actor, Action.MANAGE_TAGS)
    if source.id == target.id:
        raise Invalid({"target": "choose a different tag to merge into"})
    moved = list(session.scalars(select(PostTag.post_id).where(PostTag.tag_id == source.id)))
    has_target = select(PostTag.post_id).where(PostTag.tag_id == target.id).scalar_subquery()
    session.execute(
        delete(PostTag)
        .where(PostTag.tag_id == source.id, PostTag.post_id.in_(has_target))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(PostTag)
        .where(PostTag.tag_id == source.id)
        .values(tag_id=target.id)
        .execution_options(synchronize_session=False)
    )
    if moved:
        session.execute(
            update(Post)
            .where(Post.id.in_(moved))
            .values(version=Post.version + 1)
            .execution_options(synchronize_session=False)
        )
    session.delete(source)
    session.flush()
    # Objects loaded before the bulk statements no longer match the rows.
    session.expire_all()
    return target


def post_count(session: DbSession, tag: Tag) -> int:
    """How many posts, of any status, carry ``tag``."""
    return (
        session.scalar(select(func.count()).select_from(PostTag).where(PostTag.tag_id == tag.id))
        or 0
    )


def tags_with_counts(session: DbSession, *, actor: Actor) -> list[tuple[Tag, int]]:
    """Every tag, internal ones too, with how many posts carry it, by name; editors and up."""
    require(actor, Action.MANAGE_TAGS)
    counts = select(PostTag.tag_id, func.count().label("posts")).group_by(PostTag.tag_id).subquery()
    rows = session.execute(
        select(Tag, func.coalesce(counts.c.posts, 0))
        .outerjoin(counts, counts.c.tag_id == Tag.id)
        .order_by(func.lower(Tag.name))
    ).all()
    return [(row[0], int(row[1])) for row in rows]


def tag_names(session: DbSession, limit: int = 2000) -> list[str]:
    """Tag names to suggest while writing, by name."""
    return list(session.scalars(select(Tag.name).order_by(func.lower(Tag.name)).limit(limit)))
