"""Staff pages for the newsletter under /admin/: subscribers, CSV in and out, send progress.

They hang on the admin blueprint (``admin/__init__`` lists this module with
the others), so its sign-in check and private caching apply; each view calls
one service and commits once.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor
from broadsheet.admin.forms import ButtonForm
from broadsheet.errors import DomainError, Invalid
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import publishing, roster, sending
from broadsheet.newsletter.models import SubscriberStatus

MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _page(template: str, **context: Any) -> ResponseReturnValue:
    return render_template(f"admin/newsletter/{template}", **context)


@bp.get("/subscribers/")
def subscribers() -> ResponseReturnValue:
    args = request.args
    status = args.get("status") or None
    if status is not None and status not in SubscriberStatus.__members__.values():
        abort(400)
    listing = roster.list_subscribers(
        db.session,
        actor=actor(),
        search=args.get("q", ""),
        status=SubscriberStatus(status) if status else None,
        number=args.get("page", 1, type=int),
    )
    return _page(
        "subscribers.html",
        listing=listing,
        counts=roster.subscriber_counts(db.session),
        statuses=list(SubscriberStatus),
        filters={k: v for k, v in args.items() if k != "page"},
        button=ButtonForm(),
    )


@bp.get("/subscribers/export.csv")
def export_subscribers() -> ResponseReturnValue:
    lines = roster.export_subscribers(db.session, actor=actor())
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="subscribers.csv"'},
    )


@bp.post("/subscribers/import")
def import_subscribers() -> ResponseReturnValue:
    upload = request.files.get("file")
    if not ButtonForm().validate_on_submit() or upload is None:
        flash("Choose a CSV file to import.", "error")
        return redirect(url_for("admin.subscribers"))
    data = upload.read(MAX_IMPORT_BYTES + 1)
    try:
        if len(data) > MAX_IMPORT_BYTES:
            raise Invalid({"file": "is larger than 20 MB; split it"})
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Invalid({"file": "is not UTF-8 text"}) from None
        report = roster.import_subscribers(db.session, actor=actor(), text=text, now=utcnow())
        db.session.commit()
    except DomainError as error:
        db.session.rollback()
        details = error.fields if isinstance(error, Invalid) else {}
        flash(
            "; ".join([error.message if not details else "Nothing was imported"]
                      + [f"{k}: {v}" for k, v in list(details.items())[:10]]),
            "error",
        )  # fmt: skip
        return redirect(url_for("admin.subscribers"))
    flash(
        f"Imported {report.created} subscriber(s); {report.already_known} already known; "
        f"{report.confirmations} confirmation email(s) on their way.",
        "info",
    )
    return redirect(url_for("admin.subscribers"))


@bp.get("/sends/")
def sends() -> ResponseReturnValue:
    return _page("sends.html", sends=sending.recent_sends(db.session, actor=actor()))


@bp.get("/sends/<int:send_id>/")
def send(send_id: int) -> ResponseReturnValue:
    progress = sending.send_progress(db.session, send_id, actor=actor())
    left_out = publishing.left_out(db.session, send_id, actor=actor())
    return _page("send.html", progress=progress, left_out=left_out, button=ButtonForm())


@bp.get("/sends/<int:send_id>/progress")
def send_progress(send_id: int) -> ResponseReturnValue:
    progress = sending.send_progress(db.session, send_id, actor=actor())
    return {
        "status": progress.status.value,
        "recipients": progress.recipients,
        "sent": progress.sent,
        "failed": progress.failed,
        "skipped": progress.skipped,
        "remaining": progress.remaining,
        "percent": progress.percent,
        "stop_reason": progress.stop_reason,
    }


@bp.post("/sends/<int:send_id>/cancel")
def cancel_send(send_id: int) -> ResponseReturnValue:
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        sending.cancel_send(db.session, send_id, actor=actor(), now=utcnow())
        db.session.commit()
        flash("Cancelled: nobody else will get this email.", "info")
    except DomainError as error:
        db.session.rollback()
        flash(error.message, "error")
    return redirect(url_for("admin.send", send_id=send_id))
