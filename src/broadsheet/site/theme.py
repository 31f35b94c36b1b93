"""The theme around every public page: versioned static files, template helpers, and the
site's names as staff saved them (``site.generation``: read once a content generation).

``init_theme`` gives the site's blueprint these helpers; pages live in ``site/views.py``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, has_request_context, request, url_for

from broadsheet.site.feeds import SITE_FEEDS
from broadsheet.site.generation import SETTINGS_KEY, current_settings
from broadsheet.site.head import FeedLink, feed_links, iso, optional_url
from broadsheet.urls import path_for

STATIC = Path(__file__).parent / "static"
ONE_YEAR = 365 * 24 * 3600


class SiteBlueprint(Blueprint):
    def get_send_file_max_age(self, filename: str | None) -> int | None:
        # Stylesheet links carry a hash of the file (?v=…): that exact URL never changes.
        if filename and request.args.get("v") == static_version(filename):
            return ONE_YEAR
        return None


@cache
def static_version(filename: str) -> str:
    path = STATIC / filename
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    return _static_url(request.script_root, filename)


@cache
def _static_url(_script_root: str, filename: str) -> str:
    """Built once: a static file's URL depends on nothing else of the request."""
    return url_for("site.static", filename=filename, v=static_version(filename))


def remembered_url_for(endpoint: str, **values: Any) -> str:
    """``url_for`` for templates: a link to one of the site's own pages is built once
    (``urls.path_for``); anything else (an email's absolute links) goes to ``url_for``."""
    if endpoint.startswith("site."):
        return path_for(endpoint, **values)
    return url_for(endpoint, **values)


def long_date(moment: datetime | None) -> str:
    return f"{moment.day} {moment:%B %Y}" if moment else ""


def site_names() -> dict[str, Any]:
    # The 500 page must not touch the database: it falls back to the configured names.
    settings = request.environ.get(SETTINGS_KEY) if has_request_context() else None
    return {
        "site_title": settings.title if settings else current_app.config["SITE_TITLE"],
        "site_description": (
            settings.description if settings else current_app.config["SITE_DESCRIPTION"]
        ),
    }


def site_feeds() -> list[FeedLink]:
    return feed_links(SITE_FEEDS, current_settings().title)


def init_theme(bp: Blueprint) -> None:
    """Give every template of the app the theme's helpers and the site's names."""
    for helper in (optional_url, iso, static_url, long_date):
        bp.add_app_template_global(helper, helper.__name__)
    bp.add_app_template_global(remembered_url_for, "url_for")
    bp.app_context_processor(site_names)
