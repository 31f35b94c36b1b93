"""Staff pages for the stats under /admin/stats/: the dashboard, a post's figures, charts, CSV.

Each chart is an SVG file of its own, shown with ``<img>`` beside the table
it was drawn from; every table downloads as CSV.  The figures come from one
service per page, which decides what the signed-in person may see.
"""

from __future__ import annotations

import csv
import io

from flask import Response, abort, current_app, request, url_for
from flask.typing import ResponseReturnValue

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page
from broadsheet.extensions import db, utcnow
from broadsheet.stats import charts, figures, tables
from broadsheet.stats.tables import Table

DEFAULT_DAYS = 30
# The chart's own file draws with an inline <style> (pygal's); it runs no script and loads nothing.
SVG_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _days() -> int:
    return figures.check_period(request.args.get("days", DEFAULT_DAYS))


def _dashboard_tables() -> tuple[figures.Dashboard, list[Table]]:
    board = figures.dashboard(db.session, actor=actor(), days=_days(), now=utcnow())
    return board, tables.dashboard_tables(board)


def _post_tables(post_id: int) -> tuple[figures.PostFigures, list[Table]]:
    found = figures.post_figures(
        db.session,
        post_id,
        actor=actor(),
        days=_days(),
        now=utcnow(),
        email_opens=bool(current_app.config["STATS_EMAIL_OPENS"]),
        email_clicks=bool(current_app.config["STATS_EMAIL_CLICKS"]),
    )
    return found, tables.post_tables(found)


def _table(found: list[Table], name: str) -> Table:
    table = tables.find(found, name)
    if table is None:
        abort(404)
    return table


def _csv(table: Table, filename: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _svg(table: Table) -> Response:
    if table.chart is None:
        abort(404)
    response = Response(charts.draw(table), mimetype="image/svg+xml")
    response.headers["Content-Security-Policy"] = SVG_POLICY
    return response


@bp.get("/stats/")
def stats_dashboard() -> ResponseReturnValue:
    board, found = _dashboard_tables()

    def link(post_id: int | None) -> str | None:
        return url_for("admin.stats_post", post_id=post_id, days=board.days) if post_id else None

    links = {
        "posts": [link(row.post_id) for row in board.top_posts],
        "signups": [link(row.post_id) for row in board.signups_from or []],
    }
    return page(
        "stats/dashboard.html", board=board, tables=found, periods=figures.PERIODS, links=links
    )


@bp.get("/stats/<name>.csv")
def stats_csv(name: str) -> ResponseReturnValue:
    board, found = _dashboard_tables()
    return _csv(_table(found, name), f"stats-{name}-{board.days}-days.csv")


@bp.get("/stats/<name>.svg")
def stats_chart(name: str) -> ResponseReturnValue:
    return _svg(_table(_dashboard_tables()[1], name))


@bp.get("/stats/posts/<int:post_id>/")
def stats_post(post_id: int) -> ResponseReturnValue:
    found, post_tables = _post_tables(post_id)
    return page("stats/post.html", figures=found, tables=post_tables, periods=figures.PERIODS)


@bp.get("/stats/posts/<int:post_id>/<name>.csv")
def stats_post_csv(post_id: int, name: str) -> ResponseReturnValue:
    found, post_tables = _post_tables(post_id)
    return _csv(_table(post_tables, name), f"post-{post_id}-{name}-{found.days}-days.csv")


@bp.get("/stats/posts/<int:post_id>/<name>.svg")
def stats_post_chart(post_id: int, name: str) -> ResponseReturnValue:
    return _svg(_table(_post_tables(post_id)[1], name))
