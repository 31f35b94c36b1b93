"""RFC 9457 problem details: how every JSON door reports an error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Response, json
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from broadsheet.errors import DomainError, Invalid

PROBLEM_TYPE = "application/problem+json"


def problem(
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "status": status,
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    response.headers.update(headers or {})
    response.cache_control.no_store = True
    return response


def _flatten(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """webargs/marshmallow's nested error dict as a flat list naming each field."""
    found: list[dict[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            found.extend(_flatten(value, name))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        found.append({"field": prefix or "body", "message": " ".join(messages)})
    else:
        found.append({"field": prefix or "body", "message": str(messages)})
    return found


def from_http_exception(error: HTTPException) -> Response:
    """A problem for any HTTP error; webargs' 422 carries the bad fields in ``data``."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = None
    if "messages" in data:
        # webargs nests messages by location ("json", "query"); the location is not a field.
        errors = [item for location in data["messages"].values() for item in _flatten(location)]
    headers = dict(data.get("headers") or {})
    if status == 405 and error.get_response().headers.get("Allow"):
        headers["Allow"] = error.get_response().headers["Allow"]
    detail = None if status >= 500 else (error.description or None)
    title = "Invalid input" if errors else None
    return problem(status, title=title, detail=detail, errors=errors, headers=headers)


def from_domain_error(error: DomainError) -> Response:
    errors = None
    if isinstance(error, Invalid):
        errors = [{"field": field, "message": message} for field, message in error.fields.items()]
    return problem(error.status, title=error.title, detail=error.message, errors=errors)
