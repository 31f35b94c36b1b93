"""Uploaded images for readers: their stable addresses, and the folder store's files.

``/media/images/<uid>/<name>`` is what posts hold: it redirects to the image's
widest variant in its own format (wherever the store keeps it), briefly
cacheable, since a replace can change it.  ``/media/v/…`` serves the folder
store's variants, named by their bytes' hash and so cacheable for a year;
with S3 (or MEDIA_PUBLIC_URL) readers fetch those from there instead.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, send_file
from werkzeug.wrappers import Response as BaseResponse

from broadsheet.extensions import db
from broadsheet.media.models import EXTENSIONS, MIMETYPES
from broadsheet.media.rendering import shown
from broadsheet.media.services import images_by_uid
from broadsheet.media.storage import IMMUTABLE, VARIANT_PREFIX, FolderStore, current_store

bp = Blueprint("media", __name__)
ADDRESS_MAX_AGE = 300
MIMETYPE_OF = {ext: MIMETYPES[fmt] for fmt, ext in EXTENSIONS.items()}


@bp.get("/media/images/<uid>/<name>")
def image(uid: str, name: str) -> BaseResponse:
    found = images_by_uid(db.session, [uid]).get(uid)
    if found is None:
        abort(404)
    if not found.is_ready:
        # The variants come within seconds; the upload itself (metadata and all) is never served.
        busy = Response("The image is being processed; try again in a moment.", 503)
        busy.headers["Retry-After"] = "2"
        busy.cache_control.no_store = True
        return busy
    target = shown(found, current_store(), "", at_most=10_000).src
    response = redirect(target, 302)
    response.cache_control.public = True
    response.cache_control.max_age = ADDRESS_MAX_AGE
    return response


@bp.get(f"/media/{VARIANT_PREFIX}<prefix>/<filename>")
def variant(prefix: str, filename: str) -> Response:
    store = current_store()
    extension = filename.rpartition(".")[2]
    if not isinstance(store, FolderStore) or extension not in MIMETYPE_OF:
        abort(404)
    try:
        path = store.path(f"{VARIANT_PREFIX}{prefix}/{filename}")
    except FileNotFoundError:
        abort(404)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=MIMETYPE_OF[extension], conditional=True, etag=False)
    response.headers["Cache-Control"] = IMMUTABLE
    return response
