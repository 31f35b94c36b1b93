"""The Admin API's stats: the dashboard's figures and a post's, as the admin shows them.

The handlers hang on the Admin API's blueprint (its token check applies)
and answer with the same tables the admin draws its charts from.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, json
from marshmallow import Schema, fields, validate

from broadsheet.api.admin import SECURITY, blp
from broadsheet.extensions import db, utcnow
from broadsheet.stats import figures, tables


class StatsArgsSchema(Schema):
    days = fields.Integer(
        load_default=30,
        validate=validate.OneOf(figures.PERIODS),
        metadata={"description": "The period, in days up to today (UTC): 7, 30 or 90."},
    )


class StatsTableSchema(Schema):
    name = fields.String(required=True, metadata={"description": "daily, posts, tags, …"})
    title = fields.String(required=True)
    columns = fields.List(fields.String(), required=True)
    rows = fields.List(
        fields.List(fields.Raw()),
        required=True,
        metadata={"description": "One list per row, in the order of columns."},
    )


class StatsPeriodSchema(Schema):
    days = fields.Integer(required=True)
    first = fields.Date(required=True)
    last = fields.Date(required=True)


class StatsSchema(Schema):
    """The dashboard's figures; ``whole_site`` false: the token owner's own posts only."""

    period = fields.Nested(StatsPeriodSchema, required=True)
    whole_site = fields.Boolean(required=True)
    views = fields.Integer(required=True)
    visitors = fields.Integer(
        allow_none=True, required=True, metadata={"description": "Whole site only; else null."}
    )
    tables = fields.List(fields.Nested(StatsTableSchema), required=True)


class PostStatsSchema(Schema):
    """A post's views per day, its referrers, and its email's results when it was emailed.

    With ``STATS_EMAIL_OPENS`` the ``email`` table has a ``unique opens`` column;
    with ``STATS_EMAIL_CLICKS`` a ``links`` table gives each link's readers and clicks.
    """

    post_id = fields.Integer(required=True)
    title = fields.String(required=True)
    period = fields.Nested(StatsPeriodSchema, required=True)
    views = fields.Integer(required=True)
    tables = fields.List(fields.Nested(StatsTableSchema), required=True)


def json_response(body: dict[str, Any]) -> Response:
    response = Response(json.dumps(body), mimetype="application/json")
    response.cache_control.no_store = True
    return response


def _tables(found: list[tables.Table]) -> list[dict[str, Any]]:
    return [{"name": t.name, "title": t.title, "columns": t.columns, "rows": t.rows} for t in found]


def _period(found: figures.Dashboard | figures.PostFigures) -> dict[str, Any]:
    return {"days": found.days, "first": found.first.isoformat(), "last": found.last.isoformat()}


@blp.get("/stats/")
@blp.arguments(StatsArgsSchema, location="query", as_kwargs=True)
@blp.response(200, StatsSchema)
@blp.doc(security=SECURITY)
def site_stats(days: int) -> Response:
    """Views, visitors, top posts, tags, referrers and sources; subscribers for editors."""
    board = figures.dashboard(db.session, actor=g.api_actor, days=days, now=utcnow())
    return json_response(
        {
            "period": _period(board),
            "whole_site": board.whole_site,
            "views": board.views,
            "visitors": board.visitors if board.whole_site else None,
            "tables": _tables(tables.dashboard_tables(board)),
        }
    )


@blp.get("/stats/posts/<int(max=2147483647):post_id>/")
@blp.arguments(StatsArgsSchema, location="query", as_kwargs=True)
@blp.response(200, PostStatsSchema)
@blp.doc(security=SECURITY)
def post_stats(post_id: int, days: int) -> Response:
    """One post's figures, for its authors and editors."""
    found = figures.post_figures(
        db.session,
        post_id,
        actor=g.api_actor,
        days=days,
        now=utcnow(),
        email_opens=bool(current_app.config["STATS_EMAIL_OPENS"]),
        email_clicks=bool(current_app.config["STATS_EMAIL_CLICKS"]),
    )
    return json_response(
        {
            "post_id": found.post_id,
            "title": found.title,
            "period": _period(found),
            "views": found.views,
            "tables": _tables(tables.post_tables(found)),
        }
    )
