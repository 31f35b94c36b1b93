"""Noticing changes: a commit that wrote what readers see starts a new content generation.

The listeners are attached by ``watch``, which ``init_app`` calls, to the
app's own session factory (Flask-SQLAlchemy's ``db.session``), not to every
SQLAlchemy ``Session`` in the process: a session of another library, or one
made by hand, is none of the page cache's business.  Flask-SQLAlchemy's
one factory serves every app of the process; each listener acts for the app
whose context the session runs in, when that app has a page cache.

A change is noticed at its flush (or its bulk statement), where the new
token is *announced* inside the transaction (on PostgreSQL, a ``NOTIFY``
that every process receives only if and when the transaction commits), and
*adopted* after the commit; a rollback forgets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from broadsheet.extensions import DbSession, db
from broadsheet.page_cache.cache import PageCache, new_token, page_cache

# Tables whose rows show on public pages: a commit that wrote any of them replaces the token.
# (An image's variants becoming ready changes the markup of every post that shows it.)
WATCHED_TABLES = frozenset(
    {"posts", "tags", "post_tags", "post_authors", "users", "site_settings", "images"}
)
CHANGED = "broadsheet.page_cache.changed"  # the announced token, in Session.info until the commit


def watch() -> None:
    """Attach the listeners to the app's session factory (once per process)."""
    for name, listener in _LISTENERS.items():
        if not event.contains(db.session, name, listener):
            event.listen(db.session, name, listener)


def mark_changed(session: DbSession) -> None:
    """Replace the generation when ``session`` commits: for bulk writes no event can see
    (COPY, raw SQL).  Changes made through the ORM are noticed without it."""
    _note(session)


def _cache() -> PageCache | None:
    return page_cache(current_app) if has_app_context() else None


def _note(session: Session | DbSession) -> None:
    if CHANGED in session.info:
        return  # announced once per transaction
    cache = _cache()
    if cache is None:
        return
    token = new_token()
    session.info[CHANGED] = token
    cache.generation.announce(session, token)


def _touches(tables: Iterable[Any]) -> bool:
    return any(getattr(table, "name", None) in WATCHED_TABLES for table in tables)


def _notice_flush(session: Session, _flush: UOWTransaction) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if _touches(getattr(type(obj), "__table__", None) for obj in changed):
        _note(session)


def _notice_statement(state: ORMExecuteState) -> None:
    if (state.is_insert or state.is_update or state.is_delete) and _touches(
        [getattr(state.statement, "table", None)]
    ):
        _note(state.session)


def _adopt_generation(session: Session) -> None:
    token = session.info.pop(CHANGED, None)
    cache = _cache() if token else None
    if token and cache is not None:
        cache.adopt(token)


def _forget_changes(session: Session, _previous: object) -> None:
    if not session.in_transaction():
        session.info.pop(CHANGED, None)


_LISTENERS: dict[str, Callable[..., Any]] = {
    "after_flush": _notice_flush,
    "do_orm_execute": _notice_statement,
    "after_commit": _adopt_generation,
    "after_soft_rollback": _forget_changes,
}
