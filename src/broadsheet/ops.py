"""Health checks for the platform: ``/healthz`` and ``/readyz``.

``/healthz`` says the process answers and touches nothing else, so a slow
database never gets a healthy web process restarted.  ``/readyz`` says
whether this process can do its work: the database and the broker are each
asked once, on a connection of their own with a short timeout, side by side,
and the answer names whichever did not reply.  Why it did not (an address, a
file path, a server's message) goes to the log only: the answer is public.
Neither is ever cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from kombu import Connection
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2  # seconds one service may take to answer (psycopg's least is 2)
READY_DEADLINE = 3.0  # seconds the whole check may take, whatever hangs
OK = "ok"
FAILED = "error"  # all /readyz says of a service that failed; the log says why


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify(status=OK), 200)


@bp.get("/readyz")
def readyz() -> Response:
    # The checks run in threads of their own: they take plain values, not the app.
    database_url = current_app.config["SQLALCHEMY_DATABASE_URI"]
    celery_conf = current_app.extensions["celery"].conf
    broker_url = celery_conf.broker_url
    broker_options = dict(celery_conf.broker_transport_options or {})
    checks: dict[str, Callable[[], None]] = {
        "database": lambda: check_database(database_url),
        "broker": lambda: check_broker(broker_url, broker_options),
    }
    results = run_checks(checks, deadline=READY_DEADLINE)
    failed = {name: result for name, result in results.items() if result != OK}
    if failed:
        log.warning("not ready: %s", "; ".join(f"{k} {v}" for k, v in failed.items()))
    answer = {name: OK if result == OK else FAILED for name, result in results.items()}
    return _no_store(jsonify(answer), 503 if failed else 200)


def run_checks(checks: dict[str, Callable[[], None]], *, deadline: float) -> dict[str, str]:
    """Run every check at once; each gives ``ok`` or ``error: why`` within ``deadline`` seconds."""
    pool = ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="readyz")
    futures = {name: pool.submit(check) for name, check in checks.items()}
    wait(futures.values(), timeout=deadline)
    # A check still running is abandoned, not waited for; its own timeout ends it.
    pool.shutdown(wait=False, cancel_futures=True)
    results: dict[str, str] = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = f"error: no answer within {deadline:g} s"
        elif (exc := future.exception()) is not None:
            results[name] = f"error: {_reason(exc)}"
        else:
            results[name] = OK
    return results


def check_database(url: str, *, must_exist: bool = True) -> None:
    """``SELECT 1`` on a fresh connection that gives up after CHECK_TIMEOUT seconds.

    A missing SQLite file is an error when ``must_exist`` (connecting would
    create an empty one, and an empty database is not a ready one).
    """
    parsed = make_url(url)
    connect_args: dict[str, Any]
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ":memory:"
        if must_exist and path != ":memory:" and not Path(path).exists():
            raise FileNotFoundError(f"no database file at {path}")
        connect_args = {"timeout": CHECK_TIMEOUT}
    else:
        connect_args = {
            "connect_timeout": CHECK_TIMEOUT,
            "options": f"-c statement_timeout={CHECK_TIMEOUT * 1000}",
        }
    engine = create_engine(parsed, poolclass=NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def check_broker(url: str, transport_options: dict[str, Any]) -> None:
    """Open one connection to the broker, without retrying."""
    scheme, _, _rest = url.partition("://")
    if scheme.startswith(("sqla+", "sqlalchemy+")):
        # The embedded broker is a SQLite file, created on first use like kombu would.
        check_database(url.split("+", 1)[1], must_exist=False)
        return
    with Connection(
        url, connect_timeout=CHECK_TIMEOUT, transport_options=transport_options
    ) as conn:
        conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        exc = exc.orig
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return reason[:200]


def _no_store(response: Response, status: int) -> Response:
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
