"""Checks every request passes before any door sees it."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, request

NUL = "\x00"
API_MAX_BODY = 1024 * 1024  # a post's Markdown is far smaller; CSV imports go through the admin
API_UPLOADS = ("/api/v1/admin/images/",)  # multipart image uploads: up to MEDIA_MAX_BYTES
IMPORT_UPLOAD = "/admin/import/"  # an export: up to IMPORT_MAX_BYTES


def limit_bodies() -> None:
    """JSON API bodies over 1 MiB are refused with 413 before anything reads them; an
    export uploaded to the admin's import may be larger than any other form.

    Set here, before the CSRF check reads the form: a limit set in the view came too late.
    """
    if request.path.startswith("/api/") and request.path not in API_UPLOADS:
        request.max_content_length = API_MAX_BODY
    elif request.path in API_UPLOADS:
        request.max_content_length = current_app.config["MAX_CONTENT_LENGTH"]
    elif request.path == IMPORT_UPLOAD:
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"]


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def refuse_nul_bytes() -> None:
    """A NUL byte cannot be stored as text (PostgreSQL refuses it): refuse it at the door.

    Checked once here for every door, in the path, the query string, a form
    and a JSON body, so that no view has to remember it and none answers 500.
    """
    if NUL in request.path or any(_holds_nul(v) for v in request.args.listvalues()):
        abort(400, "The address holds a NUL byte, which no page or field accepts.")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if request.mimetype == "application/json":
            body = request.get_json(silent=True)
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body = list(request.form.listvalues())
        else:
            body = None
        if _holds_nul(body):
            abort(400, "The request body holds a NUL byte, which no field accepts.")
