"""The stats tables: raw per-minute rows, daily rows, and the day's salt and visitor marks.

``stats_minutes`` and ``stats_days`` hold the same figures at two grains:
views and new visitors per path, referring domain and ``utm_source``.
``stats_salts`` and ``stats_visitors`` live for one day only: the roll-up
deletes them once the day is over, and with the salt gone no mark can be
linked to an address or to another day's mark.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from broadsheet.extensions import Model

PATH_LENGTH = 500
REFERRER_LENGTH = 255
SOURCE_LENGTH = 100
MARK_LENGTH = 32


class MinuteViews(Model):
    """Views of one path in one minute, by referring domain and ``utm_source`` ('' for none)."""

    __tablename__ = "stats_minutes"
    __table_args__ = (
        UniqueConstraint("minute", "path", "referrer", "source", name="uq_stats_minutes_key"),
        Index("ix_stats_minutes_minute", "minute"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    minute: Mapped[datetime]
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    referrer: Mapped[str] = mapped_column(String(REFERRER_LENGTH), default="")
    source: Mapped[str] = mapped_column(String(SOURCE_LENGTH), default="")
    views: Mapped[int] = mapped_column(Integer, default=0)
    # Visitors first seen that day with this row's view (a visitor counts once a day).
    visitors: Mapped[int] = mapped_column(Integer, default=0)


class DayViews(Model):
    """The per-minute rows of one day, summed; what every dashboard reads."""

    __tablename__ = "stats_days"
    __table_args__ = (
        UniqueConstraint("day", "path", "referrer", "source", name="uq_stats_days_key"),
        Index("ix_stats_days_day", "day"),
        Index("ix_stats_days_post", "post_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    path: Mapped[str] = mapped_column(String(PATH_LENGTH))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    referrer: Mapped[str] = mapped_column(String(REFERRER_LENGTH), default="")
    source: Mapped[str] = mapped_column(String(SOURCE_LENGTH), default="")
    views: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)


class SiteDay(Model):
    """The whole site's views and visitors on one day: the dashboard's line, one row a day."""

    __tablename__ = "stats_site_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    views: Mapped[int] = mapped_column(Integer, default=0)
    visitors: Mapped[int] = mapped_column(Integer, default=0)


class Top(Model):
    """One line of a whole-site top list over the last ``days`` days, as of the last roll-up."""

    __tablename__ = "stats_tops"
    __table_args__ = (Index("ix_stats_tops_list", "days", "kind", "rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # posts, tags, referrers, sources
    rank: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(PATH_LENGTH))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    views: Mapped[int] = mapped_column(Integer)


class DaySalt(Model):
    """The day's random salt for visitor marks, shared by every process; deleted after the day."""

    __tablename__ = "stats_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))


class VisitorMark(Model):
    """A visitor seen on ``day``: a keyed hash of address and user agent, nothing else."""

    __tablename__ = "stats_visitors"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    mark: Mapped[str] = mapped_column(String(MARK_LENGTH), primary_key=True)
