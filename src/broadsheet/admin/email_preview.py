"""The newsletter email of a post, from the editor: previewed as sent, and sent as a test.

The page shows the saved version's subject, its text part, and its HTML part
in a frame; the HTML is its own response (the email's, with inline styles
and no script), framed by this site only.  "Send a test to me" queues the
email to the signed-in staff member's own address.
"""

from __future__ import annotations

from flask import abort, current_app, flash, make_response, redirect, url_for
from flask.typing import ResponseReturnValue

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page
from broadsheet.admin.forms import ButtonForm
from broadsheet.content.staff_queries import staff_post
from broadsheet.extensions import db, utcnow
from broadsheet.headers import framed_by_self
from broadsheet.newsletter import previews


@bp.get("/posts/<int:post_id>/email/")
def email_preview(post_id: int) -> ResponseReturnValue:
    post = staff_post(db.session, post_id, actor=actor())
    message = previews.preview_email(db.session, post_id, actor=actor(), config=current_app.config)
    return page("email_preview.html", post=post, message=message, button=ButtonForm())


@bp.get("/posts/<int:post_id>/email/html")
def email_preview_html(post_id: int) -> ResponseReturnValue:
    """The HTML part alone, as the subscriber's mail app receives it; shown in a frame."""
    message = previews.preview_email(db.session, post_id, actor=actor(), config=current_app.config)
    [(html, _mimetype)] = message.alternatives
    response = make_response(str(html))
    response.headers["Cache-Control"] = "no-store"
    return framed_by_self(response)


@bp.post("/posts/<int:post_id>/email/test")
def send_test_email(post_id: int) -> ResponseReturnValue:
    """Queue the email to the signed-in staff member alone; refused (403) to who cannot edit."""
    if not ButtonForm().validate_on_submit():
        abort(400)
    user = actor()
    previews.send_test_email(db.session, post_id, actor=user, now=utcnow())
    db.session.commit()
    flash(f"A test email is on its way to {user.email}.", "info")
    return redirect(url_for("admin.email_preview", post_id=post_id))
