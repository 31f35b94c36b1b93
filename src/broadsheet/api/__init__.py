"""The JSON API: a public Content API and a token-guarded Admin API, described by OpenAPI.

Built on flask-smorest: the OpenAPI 3 document is generated from the same
marshmallow schemas that parse requests and shape responses, so the
document cannot drift from the code.  Errors are RFC 9457 problem details.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_cors import CORS
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from broadsheet.api.schemas import ProblemSchema
from broadsheet.problems import PROBLEM_TYPE, from_http_exception

API_SETTINGS: dict[str, Any] = {
    "API_TITLE": "Broadsheet",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    # /api/docs is ours (api/docs.py): Swagger UI from a package, under the site's CSP.
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "The Content API (public, read-only) and the Admin API (bearer "
            "token from `broadsheet token create`). Errors are RFC 9457 problem details."
        },
    },
}


class BroadsheetApi(Api):
    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self) -> None:
        """Errors under /api/ become problem details; the site keeps its own pages."""

        def handle(error: HTTPException) -> Any:
            if request.path.startswith("/api/"):
                return from_http_exception(error)
            return error

        self._app.register_error_handler(HTTPException, handle)

    def _register_responses(self) -> None:
        """Document every error response as application/problem+json."""
        # The shared responses are prepared eagerly with this content type; success
        # responses, documented later per operation, keep application/json.
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_TYPE
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE


def init_api(app: Flask) -> None:
    from broadsheet.api import media as _media  # noqa: F401 (the image upload, on admin_blp)
    from broadsheet.api import stats as _stats  # noqa: F401 (its routes join the Admin API)
    from broadsheet.api.admin import blp as admin_blp
    from broadsheet.api.content import blp as content_blp
    from broadsheet.api.docs import bp as docs_bp

    for key, value in API_SETTINGS.items():
        app.config.setdefault(key, value)
    # One Api per app: its OpenAPI document belongs to that app alone.
    api = BroadsheetApi(app)
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "broadsheet token create"}
    )
    api.register_blueprint(content_blp)
    api.register_blueprint(admin_blp)
    app.register_blueprint(docs_bp)
    # Anyone may read the Content API from a browser on another origin; not the Admin API.
    CORS(
        app,
        resources={r"/api/v1/(?!admin/).*": {"origins": "*"}},
        send_wildcard=True,
        expose_headers=["ETag", "Link", "Last-Modified"],
        methods=["GET", "HEAD", "OPTIONS", "POST"],
    )
