"""Import and export: upload an export, read its dry-run summary, confirm, watch the worker's
progress, download the report; and download the whole site as one archive."""

from __future__ import annotations

import tempfile
from pathlib import Path

from flask import Response, current_app, redirect, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.file import FileField, FileRequired
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import StringField

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import ButtonForm, Form
from broadsheet.errors import DomainError
from broadsheet.extensions import db, utcnow
from broadsheet.porting import export as porting_export
from broadsheet.porting import services as porting
from broadsheet.porting.models import ImportJob


class ImportForm(Form):
    file = FileField(
        "Export file",
        validators=[FileRequired("Choose a file to import.")],
        description="WordPress (Tools → Export, .xml), Ghost (.json), Ghost members or Substack "
        "subscribers (.csv), or a Broadsheet archive (.zip).",
    )
    old_site = StringField(
        "Old site's address (optional)",
        description="Such as https://old.example.com: images the export names by a path alone "
        "(Ghost's) are downloaded from there.",
    )


def _max_bytes() -> int:
    return int(current_app.config["IMPORT_MAX_BYTES"])


def _folder() -> Path:
    return Path(current_app.instance_path) / "imports"


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> ResponseReturnValue:
    """An upload over its limit is refused before any form reads it: for an export, say which
    limit and how to raise it; any other form says what it was."""
    if request.endpoint == "admin.imports":
        megabytes = _max_bytes() // (1024 * 1024)
        message = (
            f"The file is larger than the {megabytes:,} MB an import takes. The site's "
            "operator can raise IMPORT_MAX_BYTES, or import it with the broadsheet import "
            "command on the server."
        )
    else:
        message = "What was sent is larger than this form takes."
    return page("message.html", 413, title="File too large", message=message)


@bp.route("/import/", methods=["GET", "POST"])
def imports() -> ResponseReturnValue:
    user = actor()
    jobs = porting.recent_jobs(db.session, actor=user)
    form = ImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            job = porting.start_import(
                db.session, actor=user, now=utcnow(), upload=upload.stream,
                filename=upload.filename or "", folder=_folder(), max_bytes=_max_bytes(),
                old_site=form.old_site.data,
            )  # fmt: skip
            db.session.commit()
        except DomainError as error:
            show_error(error, form)
        else:
            return redirect(url_for("admin.import_job", job_id=job.id))
    return page("imports.html", 422 if form.is_submitted() else 200, form=form, jobs=jobs)


def _job_page(job: ImportJob) -> ResponseReturnValue:
    summary = porting.describe_summary(job.format, job.summary or {})
    report = porting.describe_report(job.report) if job.report else ""
    return page("import_job.html", job=job, summary=summary, report=report, button=ButtonForm())


@bp.get("/import/<int:job_id>/")
def import_job(job_id: int) -> ResponseReturnValue:
    return _job_page(porting.find_job(db.session, job_id, actor=actor()))


@bp.post("/import/<int:job_id>/confirm")
def confirm_import(job_id: int) -> ResponseReturnValue:
    user = actor()
    job = porting.find_job(db.session, job_id, actor=user)
    if ButtonForm().validate_on_submit():
        porting.confirm_import(db.session, job, actor=user, now=utcnow())
        db.session.commit()
    return redirect(url_for("admin.import_job", job_id=job_id))


@bp.get("/import/<int:job_id>/progress")
def import_progress(job_id: int) -> ResponseReturnValue:
    job = porting.find_job(db.session, job_id, actor=actor())
    return {"status": job.status.value, "done": job.done, "total": job.total,
            "percent": job.percent, "error": job.error}  # fmt: skip


@bp.get("/import/<int:job_id>/report.txt")
def import_report(job_id: int) -> ResponseReturnValue:
    job = porting.find_job(db.session, job_id, actor=actor())
    text = f"Import {job.id} of {job.filename}: {job.status.value}\n\nSummary\n"
    text += porting.describe_summary(job.format, job.summary or {})
    if job.report:
        text += "\n\nReport\n" + porting.describe_report(job.report)
    if job.error:
        text += f"\n\nFailed: {job.error}"
    response = Response(text + "\n", mimetype="text/plain")
    response.headers["Content-Disposition"] = f'attachment; filename="import-{job.id}-report.txt"'
    return response


@bp.get("/export.zip")
def export_site() -> ResponseReturnValue:
    """The whole site as one archive, written to a temporary file and sent from there."""
    out = tempfile.TemporaryFile(prefix="broadsheet-export-")  # noqa: SIM115 (send_file closes it)
    media = Path(current_app.config.get("MEDIA_ROOT") or Path(current_app.instance_path) / "media")
    try:
        porting_export.write_export(db.session, out, actor=actor(), now=utcnow(), media=media)
    except BaseException:
        out.close()
        raise
    db.session.rollback()  # nothing was written; the export only read
    out.seek(0)
    return send_file(out, mimetype="application/zip", as_attachment=True,
                     download_name=f"broadsheet-export-{utcnow():%Y%m%d-%H%M}.zip")  # fmt: skip
