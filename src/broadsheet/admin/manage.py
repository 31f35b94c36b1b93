"""Tags, staff and the site's settings; and how the admin shows a refused request."""

from __future__ import annotations

from dataclasses import asdict
from zoneinfo import available_timezones

from flask import flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from wtforms.fields import SelectChoice

from broadsheet.accounts import services as accounts
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import Action, can, can_give_role
from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import ButtonForm, MergeForm, RoleForm, SettingsForm, StaffForm, TagForm
from broadsheet.content import tags as tag_services
from broadsheet.errors import DomainError, NotFound
from broadsheet.extensions import db, utcnow
from broadsheet.settings.services import editable_site_settings, update_site_settings


@bp.errorhandler(DomainError)
def refused(error: DomainError) -> ResponseReturnValue:
    db.session.rollback()
    return page("message.html", error.status, title=error.title, message=error.message)


@bp.errorhandler(CSRFError)
def stale_form(error: CSRFError) -> ResponseReturnValue:
    return page(
        "message.html",
        400,
        title="Form expired",
        message="This form was too old or did not come from this site ("
        + error.description
        + "). Go back, reload the page and send it again.",
    )


@bp.get("/tags/")
def tags() -> ResponseReturnValue:
    return page("tags.html", tags=tag_services.tags_with_counts(db.session, actor=actor()))


@bp.route("/tags/<int:tag_id>/", methods=["GET", "POST"])
def tag(tag_id: int) -> ResponseReturnValue:
    user = actor()
    found = tag_services.find_tag(db.session, tag_id, actor=user)
    form = TagForm(obj=found)
    merge = MergeForm(prefix="merge")
    others = [(t.id, t.name) for t, _n in tag_services.tags_with_counts(db.session, actor=user)]
    merge.target.choices = [SelectChoice(str(i), n) for i, n in others if i != found.id]
    if form.validate_on_submit():
        try:
            if form.name.data != found.name:
                tag_services.rename_tag(db.session, found, form.name.data or "", actor=user)
            tag_services.describe_tag(db.session, found, form.description.data or "", actor=user)
            db.session.commit()
        except DomainError as error:
            show_error(error, form)
            found = tag_services.find_tag(db.session, tag_id, actor=user)
            return page("tag.html", error.status, tag=found, form=form, merge=merge)
        flash(f"Saved the tag “{found.name}”.", "info")
        return redirect(url_for("admin.tag", tag_id=tag_id))
    return page("tag.html", 422 if form.is_submitted() else 200, tag=found, form=form, merge=merge)


@bp.post("/tags/<int:tag_id>/merge")
def merge_tag(tag_id: int) -> ResponseReturnValue:
    user = actor()
    source = tag_services.find_tag(db.session, tag_id, actor=user)
    target = tag_services.find_tag(
        db.session, request.form.get("merge-target", 0, type=int), actor=user
    )
    source_name = source.name
    tag_services.merge_tags(db.session, source, target, actor=user)
    db.session.commit()
    flash(f"Merged “{source_name}” into “{target.name}”.", "info")
    return redirect(url_for("admin.tag", tag_id=target.id))


@bp.route("/staff/", methods=["GET", "POST"])
def staff() -> ResponseReturnValue:
    user = actor()
    members = accounts.staff(db.session, actor=user)
    form = StaffForm()
    if form.validate_on_submit():
        try:
            created = accounts.create_user(
                db.session,
                actor=user,
                email=form.email.data or "",
                name=form.name.data or None,
                role=form.role.data or "",
                password=form.password.data or None,
                now=utcnow(),
            )
            db.session.commit()
        except DomainError as error:
            show_error(error, form)
        else:
            flash(f"Added {created.name} as {created.role.value}.", "info")
            return redirect(url_for("admin.staff"))
    status = 422 if form.is_submitted() else 200
    return page(
        "staff.html", status, staff=members, form=form,
        failed_emails=accounts.failed_emails(db.session, actor=user),
    )  # fmt: skip


def _staff_member(user_id: int) -> User:
    member = db.session.get(User, user_id)
    if member is None:
        raise NotFound(f"there is no staff member {user_id}")
    return member


@bp.route("/staff/<int:user_id>/", methods=["GET", "POST"])
def staff_member(user_id: int) -> ResponseReturnValue:
    user = actor()
    member = accounts.staff_account(db.session, user_id, actor=user)
    form = RoleForm(data={"role": member.role.value})
    if form.validate_on_submit():
        try:
            accounts.change_role(db.session, member, form.role.data or "", actor=user)
            db.session.commit()
        except DomainError as error:
            show_error(error, form)
        else:
            flash(f"{member.name} is now {member.role.value}.", "info")
            return redirect(url_for("admin.staff_member", user_id=user_id))
    return page(
        "staff_member.html",
        member=member,
        form=form,
        button=ButtonForm(),
        can_change=can_give_role(user, Role.CONTRIBUTOR, current=member.role)
        and member.id != user.id,
        can_transfer=can(user, Action.TRANSFER_OWNERSHIP) and member.id != user.id,
        can_end_sessions=member.id == user.id
        or can_give_role(user, Role.CONTRIBUTOR, current=member.role),
    )


@bp.post("/staff/<int:user_id>/active")
def staff_active(user_id: int) -> ResponseReturnValue:
    member = _staff_member(user_id)
    accounts.set_active(
        db.session, member, active=not member.is_active, actor=actor(), now=utcnow()
    )
    db.session.commit()
    state = "active again" if member.is_active else "deactivated"
    flash(f"{member.name} is {state}.", "info")
    return redirect(url_for("admin.staff_member", user_id=user_id))


@bp.post("/staff/<int:user_id>/sessions")
def staff_sessions(user_id: int) -> ResponseReturnValue:
    """Sign out everywhere: every session of the member ends, copied cookies included."""
    member = _staff_member(user_id)
    accounts.end_sessions(db.session, member, actor=actor())
    db.session.commit()
    flash(f"{member.name} is signed out everywhere.", "info")
    return redirect(url_for("admin.staff_member", user_id=user_id))


@bp.post("/staff/<int:user_id>/ownership")
def transfer_ownership(user_id: int) -> ResponseReturnValue:
    member = _staff_member(user_id)
    accounts.transfer_ownership(db.session, member, actor=actor())
    db.session.commit()
    flash(f"{member.name} owns the site now; you are an admin.", "info")
    return redirect(url_for("admin.staff"))


@bp.route("/settings/", methods=["GET", "POST"])
def settings() -> ResponseReturnValue:
    user = actor()
    current = editable_site_settings(db.session, actor=user)
    form = SettingsForm(data=asdict(current))
    if form.validate_on_submit():
        try:
            update_site_settings(
                db.session,
                actor=user,
                now=utcnow(),
                title=form.title.data or "",
                description=form.description.data or "",
                timezone=form.timezone.data or "",
                posts_per_page=form.posts_per_page.data or 0,
            )
            db.session.commit()
        except DomainError as error:
            show_error(error, form)
        else:
            flash("Settings saved.", "info")
            return redirect(url_for("admin.settings"))
    status = 422 if form.is_submitted() else 200
    return page("settings.html", status, form=form, zones=sorted(available_timezones()))
