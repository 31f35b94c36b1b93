"""Slugs: derived from a name with python-slugify, kept unique per table."""

from __future__ import annotations

from slugify import slugify
from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute

from broadsheet.extensions import DbSession


def make_slug(text: str, max_length: int = 120) -> str:
    # "#news" (an internal tag) becomes "hash-news", as readers never see it anyway.
    if text.startswith("#"):
        text = f"hash-{text[1:]}"
    return slugify(text, max_length=max_length, word_boundary=True) or "untitled"


def unique_slug(
    session: DbSession,
    column: InstrumentedAttribute[str],
    wanted: str,
    *,
    reserved: frozenset[str] = frozenset(),
    exclude_id: int | None = None,
) -> str:
    """Return ``wanted`` or ``wanted-2``, ``wanted-3``… whichever is free in ``column``."""
    model = column.class_
    taken_query = select(column).where(column.startswith(wanted))
    if exclude_id is not None:
        taken_query = taken_query.where(model.id != exclude_id)
    taken = set(session.scalars(taken_query)) | reserved
    if wanted not in taken:
        return wanted
    number = 2
    while f"{wanted}-{number}" in taken:
        number += 1
    return f"{wanted}-{number}"
