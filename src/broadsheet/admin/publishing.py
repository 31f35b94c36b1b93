"""The review step before a post is emailed: who will get it, the subject, a final button.

The editor saves the post, then sends the writer here (``review_url``);
nothing is published, scheduled or mailed until the confirm button POSTs
the reviewed version back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import ButtonForm
from broadsheet.errors import Conflict, Invalid
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import publishing
from broadsheet.settings.services import site_settings


def review_url(post_id: int, version: int, at: datetime | None = None) -> str:
    """Where the editor sends a writer who asked to publish (or schedule) with email."""
    if at is None:
        return url_for("admin.review_publish", post_id=post_id, version=version)
    moment = at.astimezone(UTC).isoformat()
    return url_for("admin.review_publish", post_id=post_id, version=version, at=moment)


def _at(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        abort(400)
    if moment.tzinfo is None:
        abort(400)
    return moment.astimezone(UTC)


def _sent_message(send_id: int | None, recipients: int) -> Markup:
    if send_id is None or not recipients:
        return Markup("Saved; the post is published; no subscriber is due this email.")
    link = url_for("admin.send", send_id=send_id)
    return Markup(
        "Saved; the post is published and is being emailed to {count} subscriber{s} — "
        '<a href="{link}">watch progress</a>.'
    ).format(count=f"{recipients:,}", s="" if recipients == 1 else "s", link=link)


@bp.get("/posts/<int:post_id>/publish/")
def review_publish(post_id: int) -> ResponseReturnValue:
    at = _at(request.args.get("at"))
    version = request.args.get("version", type=int)
    try:
        review = publishing.review_publish(db.session, post_id, actor=actor(), now=utcnow(), at=at)
    except (Conflict, Invalid) as error:  # Forbidden and NotFound answer 403 and 404
        show_error(error)
        return redirect(url_for("admin.edit_post", post_id=post_id))
    settings = site_settings(db.session)
    when = (
        f"{settings.to_local(at).strftime('%Y-%m-%d %H:%M')} ({settings.timezone})"
        if at is not None
        else None
    )
    return page(
        "publish_review.html",
        review=review,
        version=version if version is not None else review.version,
        at=request.args.get("at", ""),
        when=when,
        form=ButtonForm(),
    )


@bp.post("/posts/<int:post_id>/publish/")
def confirm_publish(post_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    version = request.form.get("version", type=int)
    if version is None:
        abort(400)
    at = _at(request.form.get("at"))
    now = utcnow()
    try:
        _post, send = publishing.confirm_publish(
            db.session, post_id, actor=actor(), now=now, expected_version=version, at=at
        )
        send_id, recipients = (send.id, send.recipients) if send is not None else (None, 0)
        db.session.commit()
    except (Conflict, Invalid) as error:
        show_error(error)
        return redirect(url_for("admin.edit_post", post_id=post_id))
    if at is None:
        flash(_sent_message(send_id, recipients), "info")
    else:
        settings = site_settings(db.session)
        when = settings.to_local(at).strftime("%Y-%m-%d %H:%M")
        flash(
            f"Saved; scheduled for {when} ({settings.timezone}); it will be emailed to its "
            "subscribers when it is published.",
            "info",
        )
    return redirect(url_for("admin.edit_post", post_id=post_id))
