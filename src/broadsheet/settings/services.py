"""Reading and changing the site's settings; defaults come from the app's config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession
from broadsheet.settings.models import SETTINGS_ROW_ID, SiteSettingsRow
from broadsheet.text import check_single_line

MAX_TITLE = 200
MAX_DESCRIPTION = 1000
PER_PAGE_RANGE = (1, 100)


@dataclass(frozen=True)
class SiteSettings:
    title: str
    description: str
    timezone: str
    posts_per_page: int

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_utc(self, local: datetime) -> datetime:
        """A wall-clock time in the site's zone (naive) as an aware UTC time."""
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def to_local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)


def site_settings(session: DbSession, config: Mapping[str, Any] | None = None) -> SiteSettings:
    """The settings staff saved, or the defaults from ``config`` (the app's) before they have."""
    row = session.get(SiteSettingsRow, SETTINGS_ROW_ID)
    if row is not None:
        return SiteSettings(row.title, row.description, row.timezone, row.posts_per_page)
    config = current_app.config if config is None else config
    return SiteSettings(
        title=config.get("SITE_TITLE", "Broadsheet"),
        description=config.get("SITE_DESCRIPTION", ""),
        timezone=config.get("SITE_TIMEZONE", "UTC"),
        posts_per_page=config.get("POSTS_PER_PAGE", 10),
    )


def check_timezone(name: str) -> str | None:
    """Return why ``name`` is not an IANA time zone (such as Europe/Paris), or None."""
    if name not in available_timezones():
        return "is not a time zone name such as Europe/Paris or America/New_York"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "is not a time zone this server knows"
    return None


def editable_site_settings(session: DbSession, *, actor: Actor) -> SiteSettings:
    """The site's settings as the admin's form shows them, for whoever may change them;
    raises Forbidden."""
    require(actor, Action.MANAGE_SETTINGS)
    return site_settings(session)


def update_site_settings(
    session: DbSession,
    *,
    actor: Actor,
    now: datetime,
    title: str,
    description: str,
    timezone: str,
    posts_per_page: int,
) -> SiteSettings:
    """Save the site's settings (admins and the owner); raises Forbidden or Invalid."""
    require(actor, Action.MANAGE_SETTINGS)
    title, description, timezone = title.strip(), description.strip(), timezone.strip()
    errors: dict[str, str] = {}
    if problem := check_single_line(title, limit=MAX_TITLE):
        errors["title"] = problem
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = f"must be at most {MAX_DESCRIPTION} characters"
    if problem := check_timezone(timezone):
        errors["timezone"] = problem
    low, high = PER_PAGE_RANGE
    if not low <= posts_per_page <= high:
        errors["posts_per_page"] = f"must be between {low} and {high}"
    if errors:
        raise Invalid(errors)
    row = session.get(SiteSettingsRow, SETTINGS_ROW_ID)
    if row is None:
        row = SiteSettingsRow(id=SETTINGS_ROW_ID)
        session.add(row)
    row.title = title
    row.description = description
    row.timezone = timezone
    row.posts_per_page = posts_per_page
    row.updated_at = now
    session.flush()
    return SiteSettings(title, description, timezone, posts_per_page)
