"""What every public page reads that changes only with the content: the site's settings and
its menu, each read once a content generation (``page_cache.remember``) and then from memory.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from flask import request

from broadsheet import page_cache
from broadsheet.content.queries import PostLink, public_pages
from broadsheet.extensions import db
from broadsheet.settings.services import SiteSettings, site_settings

SETTINGS_KEY = "broadsheet.site_settings"


def current_settings() -> SiteSettings:
    """The site's title, description and page size as staff saved them (a change to them
    starts a new generation)."""
    # Kept on the request itself: an app context (and its ``g``) may outlive one request.
    settings: SiteSettings | None = request.environ.get(SETTINGS_KEY)
    if settings is None:
        kept = page_cache.remember(
            "site:settings", lambda: list(dataclasses.astuple(site_settings(db.session)))
        )
        settings = request.environ[SETTINGS_KEY] = SiteSettings(*kept)
    return settings


def nav_pages(now: datetime) -> list[PostLink]:
    """The site's menu: its published standalone pages, oldest first."""
    kept = page_cache.remember(
        "site:menu",
        lambda: [
            [link.slug, link.title, link.updated_at.isoformat()]
            for link in public_pages(db.session, now=now)
        ],
    )
    return [PostLink(slug, title, datetime.fromisoformat(at)) for slug, title, at in kept]
