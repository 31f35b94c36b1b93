"""The figures as tables: what the dashboards show beside each chart, the CSV files, the API.

One definition per table (its title, its columns, its rows), so the page,
the download and the chart can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broadsheet.stats.figures import Dashboard, PostFigures


@dataclass(frozen=True)
class Table:
    name: str  # in URLs: /admin/stats/<name>.csv
    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: str | None = None  # "line" or "bar": drawn from the first column and the others


def dashboard_tables(board: Dashboard) -> list[Table]:
    """The dashboard's tables, in the order the page shows them."""
    period = f"last {board.days} days"
    daily_columns = ["day", "views", "visitors"] if board.whole_site else ["day", "views"]
    tables = [
        Table(
            "daily",
            f"Views{' and unique visitors' if board.whole_site else ''} per day, {period}",
            daily_columns,
            [[d.day.isoformat(), d.views, d.visitors][: len(daily_columns)] for d in board.daily],
            chart="line",
        ),
        Table(
            "posts",
            f"Top posts, {period}",
            ["post", "views"],
            [[r.label, r.views] for r in board.top_posts],
        ),
        Table(
            "tags",
            f"Top tags, {period}",
            ["tag", "views"],
            [[r.label, r.views] for r in board.top_tags],
        ),
        Table(
            "referrers",
            f"Top referrers, {period}",
            ["domain", "views"],
            [[r.label, r.views] for r in board.top_referrers],
        ),
        Table(
            "sources",
            f"Top campaign sources (utm_source), {period}",
            ["source", "views"],
            [[r.label, r.views] for r in board.top_sources],
        ),
    ]
    if board.growth is not None:
        tables.append(
            Table(
                "subscribers",
                f"Subscribers per day, {period}",
                ["day", "confirmed", "unsubscribed", "net"],
                [[g.day.isoformat(), g.confirmed, g.unsubscribed, g.net] for g in board.growth],
                chart="bar",
            )
        )
    if board.signups_from is not None:
        tables.append(
            Table(
                "signups",
                f"Pages readers subscribed from, {period}",
                ["page", "subscribers"],
                [[r.label, r.views] for r in board.signups_from],
            )
        )
    return tables


def post_tables(figures: PostFigures) -> list[Table]:
    period = f"last {figures.days} days"
    tables = [
        Table(
            "daily",
            f"Views per day of “{figures.title}”, {period}",
            ["day", "views"],
            [[d.day.isoformat(), d.views] for d in figures.daily],
            chart="line",
        ),
        Table(
            "referrers",
            f"Top referrers, {period}",
            ["domain", "views"],
            [[r.label, r.views] for r in figures.referrers],
        ),
    ]
    if figures.email is not None:
        email = figures.email
        tables.append(
            Table(
                "email",
                "The post's email",
                ["recipients", "delivered", "failed", "unsubscribes"]
                + (["unique opens"] if email.opens is not None else []),
                [
                    [email.recipients, email.delivered, email.failed, email.unsubscribes]
                    + ([email.opens] if email.opens is not None else [])
                ],
            )
        )
        if email.links is not None:
            tables.append(
                Table(
                    "links",
                    "Clicks per link in the email",
                    ["link", "readers", "clicks"],
                    [[link.url, link.readers, link.clicks] for link in email.links],
                )
            )
    return tables


def find(tables: list[Table], name: str) -> Table | None:
    return next((table for table in tables if table.name == name), None)
