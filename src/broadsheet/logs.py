"""Logs: one JSON object per line in production, readable lines in development.

Every record made while a request is handled carries that request's id,
taken from the ``X-Request-ID`` header when the caller (Heroku's router, a
load balancer) sends a sane one, generated otherwise, and returned in the
response.  Each request ends with exactly one line saying what was asked
and how it went (method, path, status, duration), so gunicorn's own access
log stays off.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler

REQUEST_ID_HEADER = "X-Request-ID"
# Visible ASCII only: an id ends up in log lines and response headers, where
# a newline or a control character could forge a line or split a header.
VALID_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")
REQUEST_LOGGER = "broadsheet.request"
# Fields a request line carries besides the message; copied into the JSON object.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms")
# The development server logs each request too; ours already says it.
DEV_SERVER_ACCESS_LINE = re.compile(r'"[A-Z]+ \S* HTTP/[\d.]+" \d{3}')

# Paths whose next segment is a secret token (each route with a <token> in its path).
TOKEN_PATHS = (
    "/subscribe/confirm/", "/unsubscribe/", "/preferences/", "/admin/password-reset/",
    "/email/open/", "/email/click/",
)  # fmt: skip
TOKEN_SEGMENT = re.compile(
    "(" + "|".join(re.escape(prefix) for prefix in TOKEN_PATHS) + r")[^/?#\s\"'<>]+"
)
MASK = "***"

log = logging.getLogger(REQUEST_LOGGER)


def mask_tokens(text: str) -> str:
    """``text`` with every token path segment replaced by ``***``."""
    return TOKEN_SEGMENT.sub(rf"\g<1>{MASK}", text)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at start-up.

    Test runners and process managers swap ``sys.stderr``; a handler holding
    the old stream would write into a closed file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass

    def format(self, record: logging.LogRecord) -> str:
        return mask_tokens(super().format(record))


class RequestContext(logging.Filter):
    """Stamps every record with the current request's id, or None outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "werkzeug" and DEV_SERVER_ACCESS_LINE.search(record.getMessage()):
            return False
        if has_request_context():
            record.request_id = g.get("request_id")
        elif not hasattr(record, "request_id"):  # given by ``log_request`` outside Flask
            record.request_id = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in REQUEST_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    """``12:00:00 INFO    broadsheet.request [id] GET / 200 3.1 ms`` for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-7s %(name)s%(request_tag)s %(message)s", "%H:%M:%S"
        )

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is sane, otherwise a fresh one."""
    if header and VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def configure_logging(app: Flask) -> None:
    """Send every log record to stderr in the app's format, and log each request once.

    The handler sits on the root logger, so records from SQLAlchemy, Celery and
    the libraries come out in the same format; building a second app in the
    same process (as tests do) replaces the handler instead of adding one.
    """
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if app.config.get("PRODUCTION") else ReadableFormatter())
    if app.config.get("PRODUCTION"):
        # The logging HOWTO's "Optimization": skip finding each record's calling file and
        # line, which no line of ours shows; a third of the cost of a request's log line.
        logging._srcfile = None
    handler.addFilter(RequestContext())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    # Flask adds a handler of its own to the app's logger; ours already prints those records.
    app.logger.removeHandler(default_handler)

    app.before_request(_start_request)
    app.after_request(_finish_request)


def _start_request() -> None:
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or request_id_from(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    log_request(request.method, request.path, response.status_code, started)
    return response


def log_request(
    method: str, path: str, status: int, started: float | None, request_id: str | None = None
) -> None:
    """The one line a request ends with; ``request_id`` for a request answered outside Flask
    (the page cache's), which has no ``g`` to carry it."""
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    fields: dict[str, Any] = {
        "method": method, "path": path, "status": status, "duration_ms": duration_ms
    }  # fmt: skip
    if request_id is not None:
        fields["request_id"] = request_id
    log.info("%s %s %s %s ms", method, path, status, duration_ms, extra=fields)
