"""The editor's script talks to these: the live preview and the save that keeps the page open.

Both take the editor's own form fields (CSRF token included: the app checks
every POST) plus ``post_id`` (empty for a post not saved yet) and answer
JSON; every rule is in ``content.editing``.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import jsonify, request, url_for
from flask.typing import ResponseReturnValue

from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor
from broadsheet.admin.forms import PostForm
from broadsheet.content import editing
from broadsheet.errors import DomainError, Invalid
from broadsheet.extensions import db, utcnow


def _post_id() -> int | None:
    return request.form.get("post_id", type=int)


def _failed(error: DomainError) -> ResponseReturnValue:
    db.session.rollback()
    body: dict[str, object] = {"message": error.message}
    if isinstance(error, Invalid):
        body["fields"] = error.fields
    if isinstance(error, editing.EditConflict):
        body.update(
            version=error.version,
            saved=error.saved,
            changes=[asdict(change) for change in error.changes],
        )
    return jsonify(body), error.status


@bp.post("/editor/preview")
def live_preview() -> ResponseReturnValue:
    """The body as readers would see it, with its word count and reading time."""
    form = PostForm(meta={"csrf": False})  # the app's CSRFProtect has checked the token
    try:
        shown = editing.preview(
            db.session, form.markdown.data or "", actor=actor(), post_id=_post_id()
        )
    except DomainError as error:
        return _failed(error)
    return jsonify(asdict(shown))


@bp.post("/editor/save")
def editor_save() -> ResponseReturnValue:
    """Save the editor's fields (``automatic=1`` for an autosave); answers the new version."""
    form = PostForm(meta={"csrf": False})
    fields = form.post_fields()
    try:
        post = editing.save_from_editor(
            db.session,
            _post_id(),
            editing.EditorFields(**fields),
            actor=actor(),
            expected_version=request.form.get("version", 0, type=int),
            automatic=request.form.get("automatic") == "1",
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as error:
        return _failed(error)
    return jsonify(
        post_id=post.id,
        version=post.version,
        status=post.status.value,
        edit_url=url_for("admin.edit_post", post_id=post.id),
        preview_url=url_for("admin.preview", post=post.id),
    )


@bp.post("/editor/compare")
def editor_compare() -> ResponseReturnValue:
    """The saved post beside the editor's fields when it was saved since their version (409);
    the editor asks after the server refused a stale save of the whole form."""
    form = PostForm(meta={"csrf": False})
    try:
        editing.check_unchanged_since(
            db.session,
            request.form.get("post_id", 0, type=int),
            editing.EditorFields(**form.post_fields()),
            actor=actor(),
            expected_version=request.form.get("version", 0, type=int),
        )
    except DomainError as error:
        return _failed(error)
    return jsonify(changes=[])
