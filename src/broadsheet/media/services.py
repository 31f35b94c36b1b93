"""Uploading, replacing, finding and deleting images; the rules, each written once.

Every door (the admin's forms and its editor's script, the Admin API, the
command line) calls these.  They take the acting user and ``now``, check
permissions, flush and never commit.  Files are written to the store before
the row; a transaction that rolls back removes what it wrote, and files a
delete frees are removed only once the delete commits, so a failed upload
or delete leaves neither an orphan file nor a half row.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session, selectinload

from broadsheet import queue
from broadsheet.accounts.permissions import Action, Actor, can, require
from broadsheet.content.models import Post
from broadsheet.errors import Conflict, Forbidden, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.media import processing
from broadsheet.media.models import (
    EXTENSIONS,
    MIMETYPES,
    Image,
    ImageState,
    ImageUsage,
    ImageVariant,
)
from broadsheet.media.storage import SOURCE_PREFIX, VARIANT_PREFIX, Store

UNUSED_GRACE = timedelta(days=1)  # an upload no post uses yet may still be on its way in
WRITTEN = "broadsheet.media.written"  # keys this transaction wrote: removed if it rolls back
FREED = "broadsheet.media.freed"  # keys this transaction freed: removed once it commits
# The stable address a post holds: /media/images/<uid>/<any name>.
ADDRESS = re.compile(r"/media/images/([A-Za-z0-9_-]{16})(?:/|\b)")
NAME_LENGTH = 200


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_pixels: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        return cls(int(config["MEDIA_MAX_BYTES"]), int(config["MEDIA_MAX_PIXELS"]))


def image_address(image: Image) -> str:
    """The stable address posts hold (``/media/images/<uid>/<name>``); see ``ADDRESS``."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", image.name.rsplit(".", 1)[0]).strip("-")[:60]
    return f"/media/images/{image.uid}/{stem or 'image'}.{image.extension}"


def markdown_for(image: Image) -> str:
    alt = image.alt.replace("[", "").replace("]", "").replace("\n", " ")
    return f"![{alt}]({image_address(image)})"


def _check(data: bytes, limits: Limits) -> processing.Inspected:
    if not data:
        raise Invalid({"file": "choose an image to upload"})
    if len(data) > limits.max_bytes:
        raise Invalid(
            {"file": f"the file is {len(data) / 1e6:.1f} MB; at most "
             f"{limits.max_bytes / 1e6:g} MB is accepted"}
        )  # fmt: skip
    try:
        return processing.inspect(data, max_pixels=limits.max_pixels)
    except processing.Refused as refused:
        raise Invalid({"file": str(refused)}) from None


def _clean_name(name: str) -> str:
    name = " ".join((name or "").replace("\\", "/").rsplit("/", 1)[-1].split())
    return name[:NAME_LENGTH] or "image"


def _write_source(session: DbSession, store: Store, key: str, data: bytes, fmt: str) -> None:
    store.put(key, data, MIMETYPES[fmt])
    session.info.setdefault(WRITTEN, []).append(key)
    session.info["broadsheet.media.store"] = store


def variant_key(data: bytes, fmt: str) -> str:
    """A variant's name in the store: its bytes' hash (the same bytes, the same file)."""
    digest = hashlib.sha256(data).hexdigest()[:40]
    return f"{VARIANT_PREFIX}{digest[:2]}/{digest}.{EXTENSIONS[fmt]}"


def _write_display_copy(
    session: DbSession, store: Store, image: Image, display: processing.Made,
    kept: Collection[str] = (),
) -> None:  # fmt: skip
    """Store the upload's display copy as the pending image's one variant row: its address
    shows it until the worker's variants replace it (and removes it then, or on a delete)."""
    key = variant_key(display.data, display.format)
    shared = session.scalar(select(ImageVariant.id).where(ImageVariant.key == key).limit(1))
    store.put(key, display.data, MIMETYPES[display.format])
    if (
        shared is None and key not in kept
    ):  # a file another image also shows is not removed if this rolls back
        session.info.setdefault(WRITTEN, []).append(key)
        session.info["broadsheet.media.store"] = store
    session.add(
        ImageVariant(
            image_id=image.id,
            format=display.format,
            width=display.width,
            height=display.height,
            key=key,
            byte_size=len(display.data),
        )
    )


def upload_image(
    session: DbSession,
    data: bytes,
    *,
    name: str,
    alt: str = "",
    actor: Actor,
    now: datetime,
    store: Store,
    limits: Limits,
) -> Image:
    """Keep an uploaded image and queue its processing; flushes, never commits.

    The content decides what it is (never the name): JPEG, PNG, GIF, WebP
    (AVIF where Pillow reads it), within ``limits``, whole.  Anything else
    raises Invalid naming the ``file`` field, and nothing is stored.
    Anyone who may write a post may upload.
    """
    require(actor, Action.CREATE_POST)
    found = _check(data, limits)
    uid = secrets.token_urlsafe(12)
    source = f"{SOURCE_PREFIX}{uid}"
    image = Image(
        uid=uid,
        name=_clean_name(name),
        alt=(alt or "").strip(),
        content_hash=hashlib.sha256(data).hexdigest(),
        format=found.format,
        width=found.width,
        height=found.height,
        byte_size=len(data),
        state=ImageState.PENDING,
        source_key=source,
        uploaded_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    _write_source(session, store, source, data, found.format)
    session.add(image)
    session.flush()
    _write_display_copy(session, store, image, found.display)
    session.flush()
    queue.enqueue_after_commit(session, "broadsheet.process_image", image.id)
    return image


def _may_change(actor: Actor, image: Image) -> None:
    if can(actor, Action.EDIT_ANY_POST):
        return
    require(actor, Action.CREATE_POST)
    if actor.id is None or actor.id != image.uploaded_by_id:
        raise Forbidden("Only the person who uploaded an image, or an editor, may change it.")


def replace_image(
    session: DbSession,
    image: Image,
    data: bytes,
    *,
    actor: Actor,
    now: datetime,
    store: Store,
    limits: Limits,
) -> Image:
    """Put new bytes behind ``image``'s address: every post using it shows the new picture
    (its display copy, then its variants once the worker has made them).  Same checks as an
    upload; the uploader or an editor may replace.  Flushes, never commits."""
    _may_change(actor, image)
    found = _check(data, limits)
    source = f"{SOURCE_PREFIX}{image.uid}-{secrets.token_hex(4)}"
    _write_source(session, store, source, data, found.format)
    if image.source_key:
        free_after_commit(session, store, [image.source_key])
    # The old variants make way for the new picture's display copy.
    old = {v.key for v in variants_of(session, image)}
    session.execute(delete(ImageVariant).where(ImageVariant.image_id == image.id))
    session.expire(image, ["variants"])
    _write_display_copy(session, store, image, found.display, kept=old)
    session.flush()
    shared = set(session.scalars(select(ImageVariant.key).where(ImageVariant.key.in_(old))))
    free_after_commit(session, store, sorted(old - shared))
    image.source_key = source
    image.content_hash = hashlib.sha256(data).hexdigest()
    image.format, image.width, image.height = found.format, found.width, found.height
    image.byte_size = len(data)
    image.state, image.attempts, image.error = ImageState.PENDING, 0, None
    image.updated_at = now
    session.flush()
    queue.enqueue_after_commit(session, "broadsheet.process_image", image.id)
    return image


def edit_image(session: DbSession, image: Image, *, alt: str, actor: Actor, now: datetime) -> None:
    """Change an image's alt text (what screen readers say, and search finds)."""
    _may_change(actor, image)
    image.alt = alt.strip()
    image.updated_at = now
    session.flush()


def choose_feature_image(
    session: DbSession, post: Post, address: str | None, *, actor: Actor
) -> None:
    """Give ``post`` the feature image at ``address`` (one of ours, or any http(s) address;
    None: none).  Sets it for the caller's next flush, so that a save writes the post once."""
    require(actor, Action.EDIT_POST, post)
    address = (address or "").strip() or None
    if address is not None and not (
        ADDRESS.match(address) or address.startswith(("https://", "http://"))
    ):
        raise Invalid({"feature_image": "choose an image from the library, or upload one"})
    if address is not None and len(address) > 500:
        raise Invalid({"feature_image": "the address is longer than 500 characters"})
    if post.feature_image != address:  # unchanged: the post is not written for it
        post.feature_image = address


def free_after_commit(session: DbSession, store: Store, keys: Sequence[str]) -> None:
    """Remove ``keys`` from ``store`` once the transaction commits (nothing if it rolls back)."""
    session.info.setdefault(FREED, []).extend(keys)
    session.info["broadsheet.media.store"] = store


def using_posts(session: DbSession, image: Image) -> list[Post]:
    """The posts (trashed ones included: they can be restored) whose text or feature image
    uses ``image``, newest first."""
    return list(
        session.scalars(
            select(Post)
            .join(ImageUsage, ImageUsage.post_id == Post.id)
            .where(ImageUsage.image_id == image.id)
            .order_by(Post.id.desc())
        )
    )


def delete_image(session: DbSession, image: Image, *, actor: Actor, store: Store) -> None:
    """Delete ``image`` and its files; refused (Conflict, naming them) while a post uses it.
    Flushes; the files go once the transaction commits."""
    _may_change(actor, image)
    posts = using_posts(session, image)
    if posts:
        titles = ", ".join(f"“{post.title}”" for post in posts[:10])
        more = f" and {len(posts) - 10} more" if len(posts) > 10 else ""
        raise Conflict(f"“{image.name}” is used in {_posts(len(posts))}: {titles}{more}.")
    _remove(session, image, store)


def _posts(count: int) -> str:
    return f"{count} post" if count == 1 else f"{count} posts"


def _remove(session: DbSession, image: Image, store: Store) -> None:
    keys = [v.key for v in variants_of(session, image)]
    if image.source_key:
        keys.append(image.source_key)
    shared = set(
        session.scalars(
            select(ImageVariant.key).where(
                ImageVariant.key.in_(keys), ImageVariant.image_id != image.id
            )
        )
    )
    free_after_commit(session, store, [k for k in keys if k not in shared])
    session.delete(image)
    session.flush()


def variants_of(session: DbSession, image: Image) -> list[ImageVariant]:
    return list(
        session.scalars(
            select(ImageVariant)
            .where(ImageVariant.image_id == image.id)
            .order_by(ImageVariant.width, ImageVariant.format)
        )
    )


def find_image(session: DbSession, image_id: int, *, actor: Actor) -> Image:
    require(actor, Action.VIEW_ADMIN)
    image = session.get(Image, image_id, options=[selectinload(Image.variants)])
    if image is None:
        raise NotFound("There is no such image.")
    return image


@dataclass(frozen=True)
class LibraryItem:
    image: Image
    used_in: int


def search_images(
    session: DbSession, *, actor: Actor, query: str = "", number: int = 1, per_page: int = 48
) -> tuple[list[LibraryItem], bool]:
    """A page of the library, newest first, matching ``query`` in the name or alt text; and
    whether there is a next page.  Each with how many posts use it (one query for all)."""
    require(actor, Action.VIEW_ADMIN)
    statement = select(Image).options(selectinload(Image.variants))
    words = query.strip()
    if words:
        pattern = f"%{words.lower()}%"
        statement = statement.where(
            or_(func.lower(Image.name).like(pattern), func.lower(Image.alt).like(pattern))
        )
    images = list(
        session.scalars(
            statement.order_by(Image.created_at.desc(), Image.id.desc())
            .offset((max(1, number) - 1) * per_page)
            .limit(per_page + 1)
        )
    )
    more = len(images) > per_page
    images = images[:per_page]
    rows = session.execute(
        select(ImageUsage.image_id, func.count())
        .where(ImageUsage.image_id.in_([i.id for i in images]))
        .group_by(ImageUsage.image_id)
    )
    counts: dict[int, int] = {image_id: count for image_id, count in rows}  # noqa: C416
    return [LibraryItem(image, counts.get(image.id, 0)) for image in images], more


def collect_garbage(
    session: DbSession, *, actor: Actor, now: datetime, store: Store
) -> list[Image]:
    """Remove uploads no post uses that are older than a day; returns what was removed.
    Flushes; the files go once the transaction commits."""
    require(actor, Action.EDIT_ANY_POST)
    used = select(ImageUsage.image_id).where(ImageUsage.image_id == Image.id).exists()
    unused = list(
        session.scalars(
            select(Image).where(Image.created_at < now - UNUSED_GRACE, ~used).order_by(Image.id)
        )
    )
    for image in unused:
        _remove(session, image, store)
    return unused


def record_usage(session: Session, posts: Sequence[Post]) -> None:
    """Which images each of ``posts`` uses, from its Markdown and feature image, as rows."""
    record_usage_of(session, {post.id: (post.markdown, post.feature_image) for post in posts})


def record_usage_of(
    session: DbSession, texts: Mapping[int, tuple[str | None, ...]], *, new: bool = False
) -> None:
    """``record_usage`` for posts given by id with their texts (the Markdown, the feature
    image), in at most three statements however many; ``new``: posts just inserted, which
    have no rows to replace."""
    if not texts:
        return
    connection = session.connection()
    if not new:
        connection.execute(delete(ImageUsage).where(ImageUsage.post_id.in_(list(texts))))
    wanted = {
        post_id: {uid for text in parts for uid in ADDRESS.findall(text or "")}
        for post_id, parts in texts.items()
    }
    uids = set().union(*wanted.values())
    if not uids:
        return
    found = dict(connection.execute(select(Image.uid, Image.id).where(Image.uid.in_(uids))).all())
    rows = [
        {"image_id": found[uid], "post_id": post_id}
        for post_id, used in wanted.items()
        for uid in sorted(used)
        if uid in found
    ]
    if rows:
        connection.execute(insert(ImageUsage), rows)


def images_by_uid(session: DbSession, uids: Sequence[str]) -> dict[str, Image]:
    """Images named by their addresses' tokens, with their variants (two queries)."""
    if not uids:
        return {}
    found = session.scalars(
        select(Image).where(Image.uid.in_(set(uids))).options(selectinload(Image.variants))
    )
    return {image.uid: image for image in found}
