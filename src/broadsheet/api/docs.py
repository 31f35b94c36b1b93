"""``/api/docs``: Swagger UI over the OpenAPI document, served from this site.

Swagger UI's files come from the ``flask-swagger-ui`` package (its ``dist``
folder: a pinned release, installed like any dependency, nothing fetched
from a CDN at run time); its page and the script that starts it are ours,
so that the page carries no inline script and the site's Content Security
Policy holds there too.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, render_template, send_from_directory, url_for

SWAGGER_UI = Path(str(files("flask_swagger_ui") / "dist"))
SWAGGER_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
ASSET_MAX_AGE = 24 * 3600

bp = Blueprint(
    "api_docs_ui",
    __name__,
    url_prefix="/api/docs",
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


@bp.get("")
def docs() -> str:
    return render_template("api/docs.html", spec_url=url_for("api-docs.openapi_json"))


@bp.get("/swagger-ui/<name>")
def swagger_ui(name: str) -> Response:
    if name not in SWAGGER_FILES:
        return Response("Not found", 404, mimetype="text/plain")
    return send_from_directory(SWAGGER_UI, name, max_age=ASSET_MAX_AGE)
