"""The beat's work on the stats: minute rows summed into daily rows, finished days forgotten."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, delete, func, insert, literal, select

from broadsheet.extensions import DbSession
from broadsheet.stats.models import DaySalt, DayViews, MinuteViews, SiteDay, Top, VisitorMark
from broadsheet.stats.ranking import KINDS, PERIODS


@dataclass(frozen=True)
class RollUp:
    days: list[date]  # the days whose daily rows were (re)written
    minutes_removed: int
    salts_removed: int


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _days_to_roll(session: DbSession, today: date, oldest: date) -> list[date]:
    """From the last day rolled up (again: it may have grown since) to today, within retention;
    yesterday always, for a process that wrote its last batch of the day after midnight."""
    last = session.scalar(select(func.max(DayViews.day)))
    if last is None:
        first_minute = session.scalar(select(func.min(MinuteViews.minute)))
        if first_minute is None:
            return [today]
        last = first_minute.date() if isinstance(first_minute, datetime) else today
    first = max(min(last, today - timedelta(days=1)), oldest)
    return [first + timedelta(days=n) for n in range((today - first).days + 1)]


def _write_tops(session: DbSession, today: date) -> None:
    """Every whole-site top list of every period, computed afresh (the dashboards read these)."""
    session.execute(delete(Top))
    rows = []
    for days in PERIODS:
        first = today - timedelta(days=days - 1)
        where = [DayViews.day >= first, DayViews.day <= today]
        for kind, ranking in KINDS.items():
            for rank, line in enumerate(ranking(session, where), start=1):
                rows.append(
                    {"days": days, "kind": kind, "rank": rank, "label": line.label[:500],
                     "post_id": line.post_id, "views": line.views}
                )  # fmt: skip
    if rows:
        session.execute(insert(Top), rows)


def summarise(session: DbSession, days: list[date], today: date) -> None:
    """Rewrite the whole site's totals of ``days`` from their daily rows, and every top list
    as of ``today``; a part of ``roll_up``, apart for a year of daily rows loaded in bulk."""
    for day in days:
        session.execute(delete(SiteDay).where(SiteDay.day == day))
        session.execute(
            insert(SiteDay).from_select(
                ["day", "views", "visitors"],
                select(literal(day, Date()), func.sum(DayViews.views), func.sum(DayViews.visitors))
                .where(DayViews.day == day)
                .group_by(DayViews.day),
            )
        )
    _write_tops(session, today)


def roll_up(session: DbSession, *, now: datetime, retention_days: int) -> RollUp:
    """Write the daily rows of every day not yet final, and delete what is past keeping.

    Idempotent: a day's daily rows are rewritten from its minute rows, so running
    it twice, or while views arrive, leaves the right sums.  The salts and visitor
    marks of days before today are deleted (no mark can be linked to anyone after
    that), and minute rows older than ``retention_days``.  The whole site's daily
    totals and top lists are written too.  Flushes; the caller commits.
    """
    today = now.astimezone(UTC).date()
    oldest = today - timedelta(days=retention_days)
    days = _days_to_roll(session, today, oldest)
    for day in days:
        session.execute(delete(DayViews).where(DayViews.day == day))
        in_day = (MinuteViews.minute >= _start(day)) & (
            MinuteViews.minute < _start(day + timedelta(days=1))
        )
        summed = (
            select(
                literal(day, Date()),
                MinuteViews.path,
                func.max(MinuteViews.post_id),
                MinuteViews.referrer,
                MinuteViews.source,
                func.sum(MinuteViews.views),
                func.sum(MinuteViews.visitors),
            )
            .where(in_day)
            .group_by(MinuteViews.path, MinuteViews.referrer, MinuteViews.source)
        )
        session.execute(
            insert(DayViews).from_select(
                ["day", "path", "post_id", "referrer", "source", "views", "visitors"], summed
            )
        )
    summarise(session, days, today)
    salts: Any = session.execute(delete(DaySalt).where(DaySalt.day < today))
    session.execute(delete(VisitorMark).where(VisitorMark.day < today))
    removed: Any = session.execute(delete(MinuteViews).where(MinuteViews.minute < _start(oldest)))
    session.flush()
    return RollUp(days=days, minutes_removed=removed.rowcount, salts_removed=salts.rowcount)
