"""The site's settings: one row, absent until staff first save them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadsheet.extensions import Model, utcnow

SETTINGS_ROW_ID = 1


class SiteSettingsRow(Model):
    __tablename__ = "site_settings"

    id: Mapped[int] = mapped_column(primary_key=True, default=SETTINGS_ROW_ID)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    posts_per_page: Mapped[int] = mapped_column(Integer, default=10)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
