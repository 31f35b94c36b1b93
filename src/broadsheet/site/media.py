"""Uploaded images for readers: their stable addresses, and the folder store's files.

``/media/images/<uid>/<name>`` is what posts hold: it redirects to the image's
widest variant in its own format (wherever the store keeps it), briefly
cacheable, since a replace can change it; while the variants are being made,
to the display copy made at upload (metadata stripped), for a few seconds only.
``/media/v/…`` serves the folder store's variants, named by their bytes' hash
and so cacheable for a year; with S3 (or MEDIA_PUBLIC_URL) readers fetch those
from there instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Blueprint, Flask, Response, abort, redirect, send_file
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import wrap_file

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

from broadsheet.extensions import db
from broadsheet.media.models import EXTENSIONS, MIMETYPES, ImageState
from broadsheet.media.rendering import shown
from broadsheet.media.services import images_by_uid
from broadsheet.media.storage import (
    IMMUTABLE,
    VARIANT_PREFIX,
    FolderStore,
    current_store,
    store_for,
)

bp = Blueprint("media", __name__)
ADDRESS_MAX_AGE = 300
PENDING_MAX_AGE = 5  # the address moves to the variants within seconds
MIMETYPE_OF = {ext: MIMETYPES[fmt] for fmt, ext in EXTENSIONS.items()}


@bp.get("/media/images/<uid>/<name>")
def image(uid: str, name: str) -> BaseResponse:
    found = images_by_uid(db.session, [uid]).get(uid)
    if found is None or found.state is ImageState.FAILED:
        abort(404)
    if not found.is_ready:
        # The upload itself (metadata and all) is never served: its display copy is, until
        # the variants come (seconds).  An image uploaded before display copies waits.
        if found.variants:
            early = redirect(current_store().url(found.variants[-1].key), 302)
            early.cache_control.public = True
            early.cache_control.max_age = PENDING_MAX_AGE
            return early
        busy = Response("The image is being processed; try again in a moment.", 503)
        busy.headers["Retry-After"] = "2"
        busy.cache_control.no_store = True
        return busy
    target = shown(found, current_store(), "", at_most=10_000).src
    response = redirect(target, 302)
    response.cache_control.public = True
    response.cache_control.max_age = ADDRESS_MAX_AGE
    return response


class VariantFiles:
    """WSGI: the folder store's variants answered before Flask, as a static file server would
    (a variant never changes: no database, no session, nothing to decide)."""

    NAME = re.compile(r"/media/v/([0-9a-f]{2}/[0-9a-f]{40})\.([a-z]{3,4})")

    def __init__(self, app: WSGIApplication, root: Path) -> None:
        self.app = app
        self.root = root

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = self.NAME.fullmatch(environ.get("PATH_INFO", ""))
        if not found or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return self.app(environ, start_response)
        mimetype = MIMETYPE_OF.get(found.group(2))
        path = self.root / VARIANT_PREFIX / f"{found.group(1)}.{found.group(2)}"
        try:
            handle = path.open("rb") if mimetype else None
        except OSError:
            handle = None
        if handle is None or mimetype is None:
            return self.app(environ, start_response)  # Flask answers the 404
        size = str(path.stat().st_size)
        headers = [("Content-Type", mimetype), ("Content-Length", size),
                   ("Cache-Control", IMMUTABLE)]  # fmt: skip
        start_response("200 OK", headers)
        if environ["REQUEST_METHOD"] == "HEAD":
            handle.close()
            return []
        return wrap_file(environ, handle)


def init_app(app: Flask) -> None:
    """Serve the folder store's variants in front of the app (not with S3: readers go there)."""
    store = store_for(app.config)
    if isinstance(store, FolderStore):
        app.wsgi_app = VariantFiles(app.wsgi_app, store.root)  # type: ignore[method-assign]


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
