"""Debian's Chromium driven by Playwright, and a real HTTP server on loopback for it to open.

Never a downloaded browser: the one at /usr/bin/chromium (.ci/run installs
it), without a sandbox (tests run as root) and without background
networking (this machine has no network to offer it).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from broadsheet import create_app
from broadsheet.extensions import db
from tests import services
from tests.conftest import base_config

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots for a person; ignored by git


def require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        services.missing(f"Chromium is not installed at {CHROMIUM}")


@contextmanager
def served(wsgi_app: Any) -> Iterator[str]:
    """Serve ``wsgi_app`` on 127.0.0.1 (a free port, threaded) and yield its base URL."""
    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def live_site(database_url: str, instance: Path, **config: Any) -> Iterator[tuple[str, Flask]]:
    """The app on a server of its own on a free port (``SITE_URL`` says which), over
    ``database_url``; its pool is closed after."""
    require_chromium()
    apps: list[Flask] = []  # built once the port, and so SITE_URL, is known
    with served(lambda env, start: apps[0](env, start)) as url:
        apps.append(create_app(base_config(instance, database_url, SITE_URL=url, **config)))
        try:
            yield url, apps[0]
        finally:
            with apps[0].app_context():
                db.engine.dispose()
