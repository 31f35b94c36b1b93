"""The worker's part: turning a pending upload into its variants, and finding stalled ones.

Processing is idempotent: variants are named by their bytes' hash, so doing
the work twice (a worker killed mid-way, a message delivered again) writes
the same files and the same rows.  The attempt is counted and committed
before the work starts, so an image that kills its worker every time ends
``failed`` after ``MAX_ATTEMPTS`` instead of going round for ever.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, select

from broadsheet import queue
from broadsheet.extensions import DbSession
from broadsheet.media import processing
from broadsheet.media.models import MIMETYPES, Image, ImageState, ImageVariant
from broadsheet.media.services import Limits, free_after_commit, variant_key
from broadsheet.media.storage import Store

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
# An attempt that has not finished in this long is taken as lost (the task's hard limit is 30 s).
LEASE = timedelta(seconds=60)


def claim(session: DbSession, image_id: int, *, now: datetime) -> str | None:
    """Count an attempt at processing ``image_id``; its source's key, or None when there is
    nothing to do (gone, done, failed, or out of attempts: then marked failed).  Flushes."""
    image = session.get(Image, image_id, with_for_update=True, populate_existing=True)
    if image is None or image.state is not ImageState.PENDING or not image.source_key:
        return None
    if image.attempts >= MAX_ATTEMPTS:
        _fail(image, f"processing did not finish after {MAX_ATTEMPTS} attempts", now)
        return None
    image.attempts += 1
    image.updated_at = now
    session.flush()
    return image.source_key


def _fail(image: Image, reason: str, now: datetime) -> None:
    image.state = ImageState.FAILED
    image.error = reason
    image.updated_at = now


def process(
    session: DbSession, image_id: int, source_key: str, *, store: Store, limits: Limits,
    now: datetime,
) -> bool:  # fmt: skip
    """Make ``image_id``'s variants from ``source_key`` and mark it ready; False if it failed
    or was replaced meanwhile.  Writes files, then flushes the rows; never commits."""
    try:
        data = store.get(source_key)
        made = processing.make_variants(data, max_pixels=limits.max_pixels)
    except FileNotFoundError:
        made, reason = [], "the uploaded file is missing from the store"
    except processing.Refused as refused:
        made, reason = [], str(refused)
    keys = []
    for variant in made:
        key = variant_key(variant.data, variant.format)
        store.put(key, variant.data, MIMETYPES[variant.format])
        keys.append(key)
    image = session.get(Image, image_id, with_for_update=True, populate_existing=True)
    if image is None or image.source_key != source_key or image.state is not ImageState.PENDING:
        return False  # replaced or deleted while we worked: its own task has it
    if not made:
        _fail(image, reason, now)
        session.flush()
        return False
    old = set(session.scalars(select(ImageVariant.key).where(ImageVariant.image_id == image_id)))
    session.execute(delete(ImageVariant).where(ImageVariant.image_id == image_id))
    session.add_all(
        ImageVariant(
            image_id=image_id,
            format=v.format,
            width=v.width,
            height=v.height,
            key=key,
            byte_size=len(v.data),
        )
        for v, key in zip(made, keys, strict=True)
    )
    image.state = ImageState.READY
    image.source_key = None  # the upload, metadata and all, is not kept
    image.error = None
    image.updated_at = now
    session.flush()
    shared = set(
        session.scalars(select(ImageVariant.key).where(ImageVariant.key.in_(old - set(keys))))
    )
    free_after_commit(session, store, [*(old - set(keys) - shared), source_key])
    return True


def sweep(session: DbSession, *, now: datetime) -> list[int]:
    """Queue again every pending image whose processing is not moving (a lost message, a
    killed worker, a broker that was down); returns their ids.  Flushes."""
    stalled = list(
        session.scalars(
            select(Image.id)
            .where(Image.state == ImageState.PENDING, Image.updated_at < now - LEASE)
            .order_by(Image.id)
            .limit(500)
        )
    )
    for image_id in stalled:
        queue.enqueue_after_commit(session, "broadsheet.process_image", image_id)
    return stalled
