"""What the editor's live work costs: the live preview and an autosave of a long draft.

In-process with Flask's test client, on an embedded SQLite database in a
temporary folder (no shared server is touched): a signed-in author's live
preview of a 1,500-word post (Markdown, code blocks, a table, links), and the
autosave of that draft as it grows by a sentence each time.  Each is timed
against two baselines measured in the same run, so the ratios cancel out the
machine and its noise: the Flask "hello" app (bench/hello_app.py) and
Broadsheet's own ``/healthz`` (the same middleware, no work).

    .venv/bin/python bench/editor_bench.py [--requests 200] [--seconds 60]

Every loop stops at ``--requests`` or ``--seconds``, whichever comes first.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from broadsheet import create_app
from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_user
from broadsheet.cli import upgrade_schema
from broadsheet.extensions import db, utcnow

sys.path.insert(0, str(Path(__file__).parent))
from hello_app import app as hello_app

PASSWORD = "bench horse battery staple"  # noqa: S105 (a throwaway account)
PARAGRAPH = (
    "Writing a post in [Broadsheet](https://example.com/) means **Markdown** on the left and "
    "the page on the right, rendered by the server as readers will get it; `code` stays code "
    "and a <em>little</em> HTML is kept while anything risky is dropped by the sanitiser."
)
BLOCKS = [
    PARAGRAPH,
    "```python\ndef hello(name: str) -> str:\n    return f'hello {name}'\n```",
    "| column | other |\n| --- | --- |\n| one | two |\n| three | four |",
    "- a point\n- another point with a [link](https://example.com/a)\n- a third",
    "## A heading for the next part",
]


def long_post(words: int = 1500) -> str:
    parts: list[str] = []
    while sum(len(p.split()) for p in parts) < words:
        parts.append(BLOCKS[len(parts) % len(BLOCKS)])
    return "\n\n".join(parts)


def timed(call: Callable[[int], Any], requests: int, seconds: float) -> list[float]:
    """Milliseconds each call took, up to ``requests`` calls or ``seconds`` in all."""
    for number in range(5):  # warm up: templates, the Markdown parser, the pool
        call(-1 - number)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    for number in range(requests):
        started = time.perf_counter()
        call(number)
        times.append((time.perf_counter() - started) * 1000)
        if time.perf_counter() > deadline:
            break
    return times


def token(page: str) -> str:
    found = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page)
    if not found:
        sys.exit("no CSRF token on the page")
    return found.group(1)


def expect(status: int, wanted: int, what: str) -> None:
    if status != wanted:
        sys.exit(f"{what} answered {status}, not {wanted}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    options = parser.parse_args()
    logging.disable(logging.INFO)  # the request log would time the terminal, not the app
    folder = Path(tempfile.mkdtemp(prefix="broadsheet-editor-bench-"))
    try:
        app = create_app(
            {
                "INSTANCE_PATH": str(folder),
                "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
                "SECRET_KEY": "editor-bench-secret-key-0123456789",
                "SITE_URL": "http://127.0.0.1",
                "MAIL_BACKEND": "memory",
                "CELERY_BROKER_URL": "memory://",
            }
        )
        with app.app_context():
            upgrade_schema()
            create_user(
                db.session, email="bench@example.com", name="Bench Writer", role=Role.AUTHOR,
                password=PASSWORD, now=utcnow(), actor=OPERATOR,
            )  # fmt: skip
            db.session.commit()
            db.session.remove()
        client: FlaskClient = app.test_client()
        login = client.get("/admin/login").text
        answer = client.post(
            "/admin/login",
            data={"csrf_token": token(login), "email": "bench@example.com", "password": PASSWORD},
        )
        expect(answer.status_code, 302, "signing in")
        csrf = token(client.get("/admin/posts/new").text)
        body = long_post()
        fields = {"csrf_token": csrf, "title": "A long draft", "markdown": body, "tags": "Bench"}
        first = client.post("/admin/editor/save", data={**fields, "automatic": "1", "post_id": ""})
        expect(first.status_code, 200, "the first autosave")
        post_id, version = first.json["post_id"], first.json["version"]  # type: ignore[index]

        hello = hello_app.test_client()
        state = {"version": version}

        def hello_call(_n: int) -> None:
            expect(hello.get("/").status_code, 200, "hello")

        def healthz_call(_n: int) -> None:
            expect(client.get("/healthz").status_code, 200, "/healthz")

        def preview_call(n: int) -> None:
            data = {**fields, "post_id": str(post_id), "markdown": f"{body}\n\nEdit {n}."}
            expect(client.post("/admin/editor/preview", data=data).status_code, 200, "preview")

        def autosave_call(n: int) -> None:
            data = {
                **fields, "post_id": str(post_id), "version": str(state["version"]),
                "automatic": "1", "markdown": f"{body}\n\nEdit {n}.",
            }  # fmt: skip
            answer = client.post("/admin/editor/save", data=data)
            expect(answer.status_code, 200, "autosave")
            state["version"] = answer.json["version"]  # type: ignore[index]

        results = {
            name: timed(call, options.requests, options.seconds)
            for name, call in (
                ("hello", hello_call),
                ("healthz", healthz_call),
                ("preview", preview_call),
                ("autosave", autosave_call),
            )
        }
        with app.app_context():
            db.engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    median = {name: statistics.median(times) for name, times in results.items()}
    print(f"Editor, in-process (Flask test client, SQLite), a {len(body.split())}-word post;")
    print("the machine may be shared: compare the ratios, not the milliseconds.")
    print(f"{'request':<10}{'n':>6}{'median ms':>12}{'p95 ms':>10}{'/ hello':>10}{'/ healthz':>11}")
    for name, times in results.items():
        p95 = statistics.quantiles(times, n=20)[-1] if len(times) >= 20 else max(times)
        print(
            f"{name:<10}{len(times):>6}{median[name]:>12.2f}{p95:>10.2f}"
            f"{median[name] / median['hello']:>10.1f}{median[name] / median['healthz']:>11.1f}"
        )


if __name__ == "__main__":
    main()
