"""What the media domain does around every transaction of the app's sessions.

- A post's saved Markdown or feature image is read for image addresses, and
  ``image_usages`` is rewritten for it in the same flush, whatever door saved it.
- Files written by a transaction that rolls back are removed; files freed by
  one that commits are removed then (``services.WRITTEN`` / ``services.FREED``).
"""

from __future__ import annotations

import logging

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session, UOWTransaction

from broadsheet.content.models import Post
from broadsheet.media.services import FREED, WRITTEN, record_usage
from broadsheet.media.storage import Store

log = logging.getLogger(__name__)
STORE = "broadsheet.media.store"


def _changed_text(post: Post) -> bool:
    state = inspect(post)
    return bool(
        state.attrs.markdown.history.has_changes()
        or state.attrs.feature_image.history.has_changes()
    )


@event.listens_for(Session, "after_flush")
def _track_usage(session: Session, _flush: UOWTransaction) -> None:
    posts = [
        obj
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, Post) and (obj in session.new or _changed_text(obj))
    ]
    if posts:
        record_usage(session, posts)


def _remove(store: Store, keys: list[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except Exception:  # the garbage collector finds it again; the commit stands
            log.warning("could not remove %s from the media store", key, exc_info=True)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    session.info.pop(WRITTEN, None)
    freed = session.info.pop(FREED, [])
    store = session.info.pop(STORE, None)
    if freed and store is not None:
        _remove(store, freed)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: object) -> None:
    if session.in_transaction():
        return
    session.info.pop(FREED, None)
    written = session.info.pop(WRITTEN, [])
    store = session.info.pop(STORE, None)
    if written and store is not None:
        _remove(store, written)
