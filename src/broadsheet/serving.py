"""gunicorn's thread worker, answering an over-long request line as the rest of the site would.

The Procfile's gunicorn reads request lines up to ``REQUEST_LINE_LIMIT``:
8,190 bytes before the CRLF, 8,192 with it, which is both gunicorn's largest
setting and what Heroku's router lets through, so any request the router
passes reaches the app.  A longer line (a client talking to gunicorn with no
router in front) would get gunicorn's own HTML page; this worker answers a
414 as problem details instead, the way the JSON doors answer every error,
and names no part of what was sent.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn.http.errors import LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

REQUEST_LINE_LIMIT = 8190  # bytes before the CRLF: gunicorn's maximum, Heroku's 8 KiB line
_PROBLEM = json.dumps(
    {
        "type": "about:blank",
        "title": "URI Too Long",
        "status": 414,
        "detail": f"The request line is longer than {REQUEST_LINE_LIMIT + 2} bytes.",
    }
).encode()
TOO_LONG = (
    b"HTTP/1.1 414 URI Too Long\r\n"
    b"Connection: close\r\n"
    b"Content-Type: application/problem+json\r\n"
    b"X-Content-Type-Options: nosniff\r\n"
    b"Content-Length: " + str(len(_PROBLEM)).encode() + b"\r\n\r\n" + _PROBLEM
)


class Worker(ThreadWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        if not isinstance(exc, LimitRequestLine):
            super().handle_error(req, client, addr, exc)
            return
        self.log.warning("request line too long from ip=%s: %s", (addr or ("",))[0], exc)
        try:
            client.sendall(TOO_LONG)
        except OSError:
            self.log.debug("could not answer an over-long request line")
