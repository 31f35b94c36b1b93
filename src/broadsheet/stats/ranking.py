"""Top lists over a run of days: posts, tags, referrers, campaign sources, by views.

Read live for one person's own posts (few rows, through the post index), and
computed by the roll-up for the whole site (``stats_tops``), where a period
may cover hundreds of thousands of daily rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from broadsheet.content.models import Post, PostTag, Tag
from broadsheet.extensions import DbSession
from broadsheet.stats.models import DayViews

PERIODS = (7, 30, 90)
TOP = 10


@dataclass(frozen=True)
class Ranked:
    """One line of a top list: a label, where it leads (a post's id, a tag's slug), views."""

    label: str
    views: int
    post_id: int | None = None


def ranked(session: DbSession, column: Any, where: list[Any]) -> list[Ranked]:
    views = func.sum(DayViews.views)
    rows: Any = session.execute(
        select(column, views)
        .where(*where)
        .group_by(column)
        .order_by(views.desc(), column)
        .limit(TOP)
    )
    return [Ranked(str(label), int(total)) for label, total in rows]


def top_posts(session: DbSession, where: list[Any]) -> list[Ranked]:
    views = func.sum(DayViews.views)
    top = session.execute(
        select(DayViews.post_id, views)
        .where(*where, DayViews.post_id.is_not(None))
        .group_by(DayViews.post_id)
        .order_by(views.desc(), DayViews.post_id)
        .limit(TOP)
    ).all()
    titles: dict[int | None, str] = dict(
        session.execute(select(Post.id, Post.title).where(Post.id.in_([p for p, _ in top]))).all()
    )
    return [Ranked(titles.get(post_id, "(deleted)"), int(n), post_id) for post_id, n in top]


def top_tags(session: DbSession, where: list[Any]) -> list[Ranked]:
    views = func.sum(DayViews.views)
    rows = session.execute(
        select(Tag.name, views)
        .select_from(DayViews)
        .join(PostTag, PostTag.post_id == DayViews.post_id)
        .join(Tag, Tag.id == PostTag.tag_id)
        .where(*where, ~Tag.is_internal)
        .group_by(Tag.id, Tag.name)
        .order_by(views.desc(), Tag.name)
        .limit(TOP)
    )
    return [Ranked(name, int(total)) for name, total in rows]


def top_referrers(session: DbSession, where: list[Any]) -> list[Ranked]:
    return ranked(session, DayViews.referrer, [*where, DayViews.referrer != ""])


def top_sources(session: DbSession, where: list[Any]) -> list[Ranked]:
    return ranked(session, DayViews.source, [*where, DayViews.source != ""])


# Each top list by the name the roll-up stores it under.
KINDS: dict[str, Callable[[DbSession, list[Any]], list[Ranked]]] = {
    "posts": top_posts,
    "tags": top_tags,
    "referrers": top_referrers,
    "sources": top_sources,
}
