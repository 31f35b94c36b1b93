"""Deleting a post from the admin: a confirmation, the trash, restoring from it."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import ButtonForm
from broadsheet.content import trash
from broadsheet.content.staff_queries import staff_post
from broadsheet.errors import DomainError
from broadsheet.extensions import db, utcnow


@bp.get("/posts/<int:post_id>/delete")
def delete_post(post_id: int) -> ResponseReturnValue:
    """Ask first: what deleting does, and that the trash keeps the post for a while."""
    post = trash.post_to_trash(db.session, post_id, actor=actor())
    return page("delete.html", post=post, button=ButtonForm(), days=trash.TRASH_DAYS)


@bp.post("/posts/<int:post_id>/delete")
def trash_post(post_id: int) -> ResponseReturnValue:
    post = staff_post(db.session, post_id, actor=actor())
    if not ButtonForm().validate_on_submit():
        abort(400)
    title = post.title
    try:
        trash.move_to_trash(
            db.session,
            post,
            actor=actor(),
            expected_version=request.form.get("version", type=int) or 0,
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as error:
        show_error(error)
        return redirect(url_for("admin.edit_post", post_id=post_id))
    flash(f"Moved “{title}” to the trash; restore it from there within {trash.TRASH_DAYS} days.",
          "info")  # fmt: skip
    return redirect(url_for("admin.trash_list"))


@bp.get("/trash/")
def trash_list() -> ResponseReturnValue:
    posts = trash.trashed_posts(db.session, actor=actor())
    return page("trash.html", posts=posts, button=ButtonForm(), purge_after=trash.purge_after,
                days=trash.TRASH_DAYS)  # fmt: skip


@bp.post("/trash/<int:post_id>/restore")
def restore_post(post_id: int) -> ResponseReturnValue:
    post = trash.trashed_post(db.session, post_id, actor=actor())
    if not ButtonForm().validate_on_submit():
        abort(400)
    trash.restore_from_trash(db.session, post, actor=actor(), now=utcnow())
    db.session.commit()
    flash(f"Restored “{post.title}” as it was ({post.status.value}).", "info")
    return redirect(url_for("admin.edit_post", post_id=post.id))
