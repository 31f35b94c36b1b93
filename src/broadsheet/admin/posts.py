"""The dashboard, the post list, the editor with its preview, and revisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import abort, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, can, require
from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import ButtonForm, PostForm
from broadsheet.admin.media import apply_feature_image, feature_preview, picker_choices
from broadsheet.admin.publishing import review_url
from broadsheet.content import editing
from broadsheet.content import revisions as post_history
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostStatus, Tag
from broadsheet.content.rendering import count_words, reading_minutes
from broadsheet.content.staff_queries import dashboard as dashboard_query
from broadsheet.content.staff_queries import staff_post, staff_posts
from broadsheet.content.tags import tag_names
from broadsheet.errors import Conflict, DomainError, Forbidden, Invalid
from broadsheet.extensions import db, utcnow
from broadsheet.headers import framed_by_self
from broadsheet.newsletter import publishing, sending
from broadsheet.newsletter.models import SubscriberStatus
from broadsheet.newsletter.roster import subscriber_counts
from broadsheet.settings.services import SiteSettings, site_settings

PER_PAGE = 25
STATUS_CODES = {Conflict: 409, Forbidden: 403}


def _status_for(error: DomainError) -> int:
    return STATUS_CODES.get(type(error), 422)


@bp.get("/")
def dashboard() -> ResponseReturnValue:
    board = dashboard_query(db.session, actor=actor())
    confirmed = subscriber_counts(db.session)[SubscriberStatus.CONFIRMED]
    return page(
        "dashboard.html",
        board=board,
        settings=site_settings(db.session),
        subscriber_count=confirmed,
    )


@bp.get("/posts/")
def posts() -> ResponseReturnValue:
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in PostStatus.__members__.values():
        abort(400)
    tag = db.session.scalar(select(Tag).where(Tag.slug == args["tag"])) if args.get("tag") else None
    author_id = args.get("author", type=int)
    listing = staff_posts(
        db.session,
        actor=actor(),
        number=args.get("page", 1, type=int),
        per_page=PER_PAGE,
        status=PostStatus(status) if status else None,
        tag_id=tag.id if tag else (-1 if args.get("tag") else None),
        author_id=author_id,
        search=args.get("q", ""),
        now=utcnow(),
    )
    return page(
        "posts.html",
        listing=listing,
        statuses=list(PostStatus),
        tags=db.session.scalars(select(Tag).order_by(Tag.name)).all(),
        authors=db.session.scalars(select(User).order_by(User.name)).all(),
        filters={k: v for k, v in args.items() if k != "page"},
    )


def _form_context(form: PostForm, post: Post | None, settings: SiteSettings) -> dict[str, Any]:
    user = actor()
    return {
        "form": form,
        "post": post,
        "settings": settings,
        "tag_names": tag_names(db.session),
        "can_publish": can(user, Action.PUBLISH_POST, post),
        "version_number": post_history.version_number(db.session, post) if post else None,
        "can_delete": post is not None and content.may_delete(user, post),
        "words": (words := count_words(form.markdown.data or "")),
        "minutes": reading_minutes(words),
        "now": utcnow(),
        # The field the cursor starts in: the first one in error, or a new post's title.
        "focus": next(iter(form.errors), None) or (None if post else "title"),
        "feature_choices": picker_choices(post),
        "feature_preview": feature_preview(post),
    }


def next_quarter_hour(now: datetime, settings: SiteSettings) -> datetime:
    """The picker's default: the next round quarter hour on the site's wall clock (naive)."""
    local = settings.to_local(now).replace(tzinfo=None, second=0, microsecond=0)
    return local + timedelta(minutes=15 - local.minute % 15)


def _publish_at(form: PostForm, settings: SiteSettings) -> datetime:
    if form.publish_at.data is None:
        raise Invalid({"publish_at": "choose the date and time to publish at"})
    return settings.to_utc(form.publish_at.data)


def _done_message(post: Post, settings: SiteSettings) -> str:
    if post.status is PostStatus.SCHEDULED and post.published_at is not None:
        when = settings.to_local(post.published_at).strftime("%Y-%m-%d %H:%M")
        return f"Saved; scheduled for {when} ({settings.timezone})."
    if post.status is PostStatus.PUBLISHED:
        return "Saved; the post is published."
    return "Saved as a draft."


@bp.route("/posts/new", methods=["GET", "POST"])
def new_post() -> ResponseReturnValue:
    user = actor()
    require(user, Action.CREATE_POST)
    settings = site_settings(db.session)
    form = PostForm()
    if not form.is_submitted():
        form.publish_at.data = next_quarter_hour(utcnow(), settings)
    if not form.validate_on_submit():
        code = 422 if form.is_submitted() else 200
        return page("edit.html", code, **_form_context(form, None, settings))
    action = request.form.get("action", "save")
    now = utcnow()
    try:
        post = content.create_post(
            db.session,
            actor=user,
            authors=[user],
            now=now,
            **form.post_fields(),
        )
        apply_feature_image(post, user=user)
        review = _apply(action, post, form, settings, user=user, now=now)
        db.session.commit()
    except DomainError as error:
        show_error(error, form)
        return page("edit.html", _status_for(error), **_form_context(form, None, settings))
    if review:
        return _to_review(review)
    flash(_done_message(post, settings), "info")
    return redirect(url_for("admin.edit_post", post_id=post.id))


def _to_review(url: str) -> ResponseReturnValue:
    flash("Saved. Nothing is sent yet: review who will get the email, then confirm.", "info")
    return redirect(url)


def _apply(
    action: str, post: Post, form: PostForm, settings: SiteSettings, *, user: User, now: datetime
) -> str | None:
    """What the pressed button asks of the saved post: publish, schedule, unpublish, or
    nothing more; with email, the address of the review page that confirms it (nothing
    is published or mailed before that)."""
    if action == "publish_email" or (action == "schedule" and form.email_on_publish.data):
        at = _publish_at(form, settings) if action == "schedule" else None
        # Refused here, on the form, what the review would refuse (a contributor, a past time).
        publishing.review_publish(db.session, post.id, actor=user, now=now, at=at)
        return review_url(post.id, post.version, at)
    if action == "publish":
        content.publish_post(db.session, post, actor=user, now=now)
    elif action == "schedule":
        sending.schedule_with_email(
            db.session, post, actor=user, at=_publish_at(form, settings), now=now,
            email=False,  # with email, the review above schedules it
        )  # fmt: skip
    elif action == "unpublish":
        content.unpublish_post(db.session, post, actor=user, now=now)
    return None


def _initial(post: Post, settings: SiteSettings, now: datetime) -> dict[str, Any]:
    scheduled = post.status is PostStatus.SCHEDULED and post.published_at is not None
    return {
        **editing.saved_fields(post),
        "publish_at": settings.to_local(post.published_at).replace(tzinfo=None)
        if scheduled and post.published_at
        else next_quarter_hour(now, settings),
        "email_on_publish": post.email_on_publish,
        "version": post.version,
    }


@bp.route("/posts/<int:post_id>/", methods=["GET", "POST"])
def edit_post(post_id: int) -> ResponseReturnValue:
    user = actor()
    post = staff_post(db.session, post_id, actor=user)
    settings = site_settings(db.session)
    if request.method == "GET":
        form = PostForm(data=_initial(post, settings, utcnow()))
        return page("edit.html", **_form_context(form, post, settings))
    form = PostForm()
    if not form.validate_on_submit():
        return page("edit.html", 422, **_form_context(form, post, settings))
    action = request.form.get("action", "save")
    now = utcnow()
    try:
        apply_feature_image(post, user=user)  # before the save: one write of the post
        content.update_post(
            db.session,
            post,
            actor=user,
            expected_version=int(form.version.data or 0),
            now=now,
            **form.post_fields(),
        )
        review = _apply(action, post, form, settings, user=user, now=now)
        db.session.commit()
    except DomainError as error:
        show_error(error, form)
        post = staff_post(db.session, post_id, actor=user)
        context = _form_context(form, post, settings)
        # The editor's script then shows the saved version beside the writer's.
        return page(
            "edit.html", _status_for(error), conflict=isinstance(error, Conflict), **context
        )
    if review:
        return _to_review(review)
    flash(_done_message(post, settings), "info")
    return redirect(url_for("admin.edit_post", post_id=post.id))


@bp.post("/preview")
def preview() -> ResponseReturnValue:
    """The post as readers would see it, rendered by the server from the unsaved form
    (``?post=`` names the post it edits, for the permission check)."""
    form = PostForm()
    post_id = request.args.get("post", type=int)
    body = editing.preview(db.session, form.markdown.data or "", actor=actor(), post_id=post_id)
    shown = page("preview.html", title=form.title.data or "Untitled", html=body.html)
    return framed_by_self(make_response(shown))  # the editor shows it in a frame


@bp.get("/posts/<int:post_id>/revisions/")
def revisions(post_id: int) -> ResponseReturnValue:
    post = staff_post(db.session, post_id, actor=actor())
    history = post_history.post_revisions(db.session, post, actor=actor())
    return page("revisions.html", post=post, revisions=history, button=ButtonForm())


@bp.get("/posts/<int:post_id>/revisions/<int:revision_id>/")
def revision(post_id: int, revision_id: int) -> ResponseReturnValue:
    """One revision compared with another (``?against=``), by default the latest."""
    post = staff_post(db.session, post_id, actor=actor())
    history = post_history.post_revisions(db.session, post, actor=actor())
    chosen = post_history.find_revision(db.session, post, revision_id)
    against_id = request.args.get("against", type=int)
    other = post_history.find_revision(db.session, post, against_id) if against_id else history[0]
    older, newer = sorted([chosen, other], key=lambda r: r.id)
    return page(
        "revision.html",
        post=post,
        revision=chosen,
        older=older,
        newer=newer,
        changes=post_history.compare_revisions(older, newer),
        revisions=history,
        button=ButtonForm(),
    )


@bp.post("/posts/<int:post_id>/revisions/<int:revision_id>/restore")
def restore(post_id: int, revision_id: int) -> ResponseReturnValue:
    post = staff_post(db.session, post_id, actor=actor())
    chosen = post_history.find_revision(db.session, post, revision_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        post_history.restore_revision(
            db.session,
            post,
            chosen,
            actor=actor(),
            expected_version=request.form.get("version", type=int) or 0,
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as error:
        show_error(error)
        return redirect(url_for("admin.revisions", post_id=post_id))
    flash(f"Restored version {chosen.version}; it is saved as a new revision.", "info")
    return redirect(url_for("admin.edit_post", post_id=post_id))
