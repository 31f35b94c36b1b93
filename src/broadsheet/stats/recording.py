"""Writing a process's batch of views: visitor marks keyed by the day's salt, then minute rows.

One call per batch (about one a second per web process): a few statements
whatever the traffic.  Rows are added to (upserts), so every process of a
deployment writes to the same minute rows, and a batch lost with a killed
process costs only its own views.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from broadsheet.content.models import Post
from broadsheet.extensions import DbSession
from broadsheet.stats.models import DaySalt, MinuteViews, VisitorMark

CHUNK = 500  # rows per statement: under SQLite's limit on bound values


@dataclass(frozen=True)
class ViewKey:
    """What one minute row is kept under; ``slug`` is set for a post's page."""

    minute: datetime
    path: str
    referrer: str
    source: str
    slug: str | None = None


@dataclass
class Tally:
    """A batch's views of one key, and its visitors as unsalted digests (memory only)."""

    views: int = 0
    visitors: set[bytes] = field(default_factory=set)


def _insert(session: DbSession, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)


def day_salt(session: DbSession, day: date) -> bytes:
    """The salt every process uses for ``day``'s marks, made by whichever asks first."""
    session.execute(
        _insert(session, DaySalt)
        .values(day=day, salt=secrets.token_hex(32))
        .on_conflict_do_nothing(index_elements=[DaySalt.day])
    )
    salt = session.scalar(select(DaySalt.salt).where(DaySalt.day == day))
    assert salt is not None
    return bytes.fromhex(salt)


def visitor_mark(digest: bytes, salt: bytes) -> str:
    """A day's mark for a visitor: without the salt, nobody can tell whose it is."""
    return hashlib.blake2b(digest, key=salt, digest_size=16).hexdigest()


def _chunks(rows: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


def _new_marks(session: DbSession, marks: set[tuple[date, str]]) -> set[tuple[date, str]]:
    """Add the marks; return those not seen before today (in any process)."""
    rows = [{"day": day, "mark": mark} for day, mark in sorted(marks)]
    new: set[tuple[date, str]] = set()
    for chunk in _chunks(rows):
        statement = (
            _insert(session, VisitorMark)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=[VisitorMark.day, VisitorMark.mark])
            .returning(VisitorMark.day, VisitorMark.mark)
        )
        new.update((row.day, row.mark) for row in session.execute(statement))
    return new


def _post_ids(session: DbSession, slugs: set[str]) -> dict[str, int]:
    if not slugs:
        return {}
    found = session.execute(select(Post.slug, Post.id).where(Post.slug.in_(sorted(slugs))))
    return dict(found.all())


def record_views(session: DbSession, batch: Mapping[ViewKey, Tally]) -> int:
    """Add a batch of views to the minute rows; returns the views written.

    Each visitor's digest becomes the day's mark (keyed by the day's salt);
    a mark new to the day counts as one visitor, on the first row it came
    with.  A post's page is tied to the post by its slug here, once per
    batch, not in the request.  Flushes; the caller commits.
    """
    if not batch:
        return 0
    salts = {day: day_salt(session, day) for day in {key.minute.date() for key in batch}}
    marks = {
        key: {
            (key.minute.date(), visitor_mark(d, salts[key.minute.date()])) for d in tally.visitors
        }
        for key, tally in batch.items()
    }
    unseen = _new_marks(session, set().union(*marks.values()))
    posts = _post_ids(session, {key.slug for key in batch if key.slug})
    rows = []
    for key, tally in batch.items():
        firsts = marks[key] & unseen
        unseen -= firsts
        rows.append(
            {
                "minute": key.minute,
                "path": key.path,
                "post_id": posts.get(key.slug) if key.slug else None,
                "referrer": key.referrer,
                "source": key.source,
                "views": tally.views,
                "visitors": len(firsts),
            }
        )
    table = MinuteViews.__table__
    for chunk in _chunks(rows):
        statement = _insert(session, MinuteViews).values(chunk)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.minute, table.c.path, table.c.referrer, table.c.source],
                set_={
                    "views": table.c.views + statement.excluded.views,
                    "visitors": table.c.visitors + statement.excluded.visitors,
                    "post_id": statement.excluded.post_id,
                },
            )
        )
    return sum(tally.views for tally in batch.values())
