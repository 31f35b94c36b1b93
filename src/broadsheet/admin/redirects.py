"""Redirects: the list of old addresses that lead elsewhere, and adding or deleting one."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask.typing import ResponseReturnValue
from wtforms import StringField
from wtforms.validators import DataRequired

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import ButtonForm, Form
from broadsheet.content import redirects as redirect_services
from broadsheet.errors import DomainError
from broadsheet.extensions import db, utcnow


class RedirectForm(Form):
    old_path = StringField(
        "Old path",
        validators=[DataRequired()],
        description="A path on this site, such as /2019/05/old-post/ or /?p=123.",
    )
    target = StringField(
        "Leads to",
        validators=[DataRequired()],
        description="A path on this site (/new-post/) or a full http(s) address.",
    )


@bp.route("/redirects/", methods=["GET", "POST"])
def redirects() -> ResponseReturnValue:
    user = actor()
    form = RedirectForm()
    if form.validate_on_submit():
        try:
            added = redirect_services.add_redirect(
                db.session,
                actor=user,
                old_path=form.old_path.data or "",
                target=form.target.data or "",
                now=utcnow(),
            )
            db.session.commit()
        except DomainError as error:
            show_error(error, form)
        else:
            flash(f"{added.old_path} now leads to {added.target}.", "info")
            return redirect(url_for("admin.redirects"))
    rows = redirect_services.list_redirects(db.session, actor=user)
    return page(
        "redirects.html",
        422 if form.is_submitted() else 200,
        redirects=rows,
        total=redirect_services.count_redirects(db.session),
        form=form,
        delete_form=ButtonForm(),
    )


@bp.post("/redirects/<int:redirect_id>/delete")
def delete_redirect(redirect_id: int) -> ResponseReturnValue:
    form = ButtonForm()
    if form.validate_on_submit():
        redirect_services.delete_redirect(db.session, redirect_id, actor=actor())
        db.session.commit()
        flash("Deleted the redirect.", "info")
    return redirect(url_for("admin.redirects"))
