"""What every admin view shares: the signed-in actor, errors onto forms, page rendering."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from flask import flash, g, render_template
from flask_login import current_user
from flask_wtf import FlaskForm

from broadsheet.accounts.models import Role, User
from broadsheet.admin.blueprint import bp
from broadsheet.content.models import PostStatus
from broadsheet.errors import DomainError, Invalid
from broadsheet.extensions import db
from broadsheet.settings.services import SiteSettings, site_settings


def actor() -> User:
    """The signed-in staff member (the blueprint lets nobody else in)."""
    return cast(User, current_user._get_current_object())


def show_error(error: DomainError, form: FlaskForm | None = None) -> None:
    """Put an Invalid's messages on the form's fields; anything else becomes a flash message."""
    db.session.rollback()
    if isinstance(error, Invalid) and form is not None:
        for name, message in error.fields.items():
            field = form._fields.get(name)
            if field is not None:
                field.errors = [*field.errors, message]
            else:
                flash(f"{name.replace('_', ' ').capitalize()}: {message}", "error")
        return
    flash(error.message, "error")


def page(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(f"admin/{template}", **context), status


def _settings() -> SiteSettings:
    if "site_settings" not in g:
        g.site_settings = site_settings(db.session)
    return cast(SiteSettings, g.site_settings)


def local(moment: datetime) -> str:
    """A stored UTC time as the site's wall-clock time."""
    return _settings().to_local(moment).strftime("%Y-%m-%d %H:%M")


@bp.context_processor
def admin_globals() -> dict[str, Any]:
    return {"roles": Role, "statuses": PostStatus, "local": local}
