"""gunicorn settings for Broadsheet: ``gunicorn 'broadsheet:create_app()'`` reads this file.

On a platform (Heroku and alike) the port comes in ``PORT`` and the number
of worker processes in ``WEB_CONCURRENCY``; without ``PORT`` the server
listens on 127.0.0.1:8000 only.  Settings are checked before any worker is
forked, so a missing one stops the server with the same single line that
the ``broadsheet`` command prints, instead of a traceback from each worker.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any


def _whole_number(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        print(
            f"broadsheet: {name} is {raw!r}; use a whole number from {low} to {high}",
            file=sys.stderr,
        )
        sys.exit(2)
    return int(raw)


_port = _whole_number("PORT", 0, 1, 65535)
# On the platform the router reaches the dyno from elsewhere; on a laptop, loopback only.
bind = [f"0.0.0.0:{_port}"] if _port else ["127.0.0.1:8000"]
wsgi_app = "broadsheet:create_app()"
workers = _whole_number("WEB_CONCURRENCY", 2, 1, 64)
# A few threads per process keep a slow client from holding a whole worker: gunicorn's
# thread worker, answering a request line longer than the router allows with a clean 414.
worker_class = "broadsheet.serving.Worker"
threads = _whole_number("GUNICORN_THREADS", 4, 1, 32)
# The platform's router gives up on a request after 30 s, and kills the
# process 30 s after SIGTERM: finish what is in flight well before that.
timeout = 30
graceful_timeout = 20
keepalive = 5
# Request lines up to 8,192 bytes with the CRLF, as Heroku's router allows (gunicorn's default
# is 4,094: a long query string the router passed would get gunicorn's HTML 400).
limit_request_line = 8190
# The router sets X-Forwarded-For and X-Forwarded-Proto, and only it can reach a dyno.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*" if _port else "127.0.0.1")
# The app logs one line per request itself (JSON in production, with the request id).
accesslog = None
errorlog = "-"
# Each worker builds its own app: no database connection is shared across a fork.
preload_app = False


def post_worker_init(worker: Any) -> None:
    """What the worker built while loading the app (modules, routes, the ORM's mappings) lives
    as long as the worker: moved out of the garbage collector's reach, a full collection reads
    only what requests left behind.  It read all of it before: about 70 ms, once every few
    hundred requests, added to whichever request set it off."""
    gc.freeze()


def on_starting(server: Any) -> None:
    """Check the settings once, in the master, before binding or forking."""
    from broadsheet.config import ConfigError, default_instance_path, load_settings

    try:
        load_settings(os.environ, default_instance_path())
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"broadsheet: {line}", file=sys.stderr)
        sys.exit(2)
