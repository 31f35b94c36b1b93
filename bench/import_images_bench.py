"""What downloading an import's images costs: the same WordPress export imported with and without.

Serves PNGs from a loopback HTTP server (one per post as its feature image,
and one image every post's body shares), writes a WXR of ``--posts`` posts,
and imports it into fresh SQLite databases in this process: once keeping the
images' addresses (the baseline), once downloading them into the media
library, then that second import again (everything known: nothing is
fetched).  Each figure is given as a ratio to baselines measured in the same
run: the import that keeps the addresses, and the in-process time of the
hello app's one request (bench/hello_app.py), since the machine may be
shared and noisy.

    .venv/bin/python bench/import_images_bench.py [--posts 200]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))


def picture() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (800, 600), (200, 60, 40))
    image.paste((30, 90, 200), (0, 0, 400, 200))
    image.save(out, "PNG")
    return out.getvalue()


class Handler(BaseHTTPRequestHandler):
    data = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        self.wfile.write(self.data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def write_wxr(path: Path, site: str, posts: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:wp="http://wordpress.org/export/1.2/"><channel><title>Bench</title>'
            f"<wp:wxr_version>1.2</wp:wxr_version><wp:base_site_url>{site}</wp:base_site_url>"
            "<wp:author><wp:author_login>w</wp:author_login><wp:author_email>w@bench.example.com"
            "</wp:author_email><wp:author_display_name>W</wp:author_display_name></wp:author>\n"
        )
        for n in range(1, posts + 1):
            body = (f"<p>Post {n} about roses.</p><p><img src='{site}/shared.png' alt='Shared'>"
                    "</p><p>More words.</p>")  # fmt: skip
            out.write(
                f"<item><title>Picture {n}</title><wp:post_id>{n + 100000}</wp:post_id>"
                "<wp:post_type>attachment</wp:post_type><wp:status>inherit</wp:status>"
                f"<wp:attachment_url>{site}/img/{n}.png</wp:attachment_url></item>\n"
                f"<item><title>Bench post {n}</title><dc:creator>w</dc:creator>"
                f"<content:encoded><![CDATA[{body}]]></content:encoded>"
                f"<wp:post_id>{n}</wp:post_id><wp:post_date_gmt>2020-01-02 10:00:00"
                f"</wp:post_date_gmt><wp:post_name>bench-post-{n}</wp:post_name>"
                "<wp:status>publish</wp:status><wp:post_type>post</wp:post_type>"
                "<wp:postmeta><wp:meta_key>_thumbnail_id</wp:meta_key>"
                f"<wp:meta_value>{n + 100000}</wp:meta_value></wp:postmeta></item>\n"
            )
        out.write("</channel></rss>\n")


def hello_request_seconds(requests: int = 2000) -> float:
    from hello_app import app

    client = app.test_client()
    started = time.perf_counter()
    for _ in range(requests):
        client.get("/")
    return (time.perf_counter() - started) / requests


def import_into(folder: Path, wxr: Path, *, fetch: bool, again: bool = False) -> dict[str, Any]:
    """Import ``wxr`` into a fresh SQLite site under ``folder`` (twice with ``again``)."""
    from broadsheet import create_app
    from broadsheet.accounts.models import Role
    from broadsheet.accounts.permissions import OPERATOR
    from broadsheet.accounts.services import create_user
    from broadsheet.cli import upgrade_schema
    from broadsheet.extensions import db, utcnow
    from broadsheet.media.storage import current_store
    from broadsheet.porting import images
    from broadsheet.porting import services as porting

    folder.mkdir()
    app = create_app({
        "INSTANCE_PATH": str(folder), "SECRET_KEY": "bench-secret-0123456789abcdef",
        "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}", "CELERY_BROKER_URL": "memory://",
        "IMPORT_FETCH_PRIVATE": "true",  # the old site is on loopback
    })  # fmt: skip
    figures: dict[str, Any] = {}
    with app.app_context():
        upgrade_schema()
        create_user(db.session, email="owner@bench.example.com", role=Role.OWNER,
                    now=utcnow(), actor=OPERATOR)  # fmt: skip
        db.session.commit()
        fetching = images.fetching_for(app.config, current_store()) if fetch else None
        for run in ("first", "again") if again else ("first",):
            started = time.perf_counter()
            with wxr.open("rb") as upload:
                job = porting.start_import(db.session, actor=OPERATOR, now=utcnow(),
                                           upload=upload, filename=wxr.name,
                                           folder=folder / "jobs")  # fmt: skip
            db.session.commit()
            for _done in porting.run_import(db.session, job, actor=OPERATOR, now=utcnow(),
                                            fetching=fetching):  # fmt: skip
                db.session.commit()
            figures[run] = {"seconds": time.perf_counter() - started, "report": job.report or {}}
        db.session.remove()
        db.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=200)
    args = parser.parse_args()
    posts = max(1, min(args.posts, 2000))  # bounded: a shared machine

    Handler.data = picture()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory(prefix="broadsheet-fetch-bench-") as tmp:
            wxr = Path(tmp) / "bench.xml"
            write_wxr(wxr, site, posts)
            hello = hello_request_seconds()
            kept = import_into(Path(tmp) / "kept", wxr, fetch=False)["first"]
            fetched = import_into(Path(tmp) / "fetched", wxr, fetch=True, again=True)
    finally:
        server.shutdown()
        server.server_close()
    first, again = fetched["first"], fetched["again"]
    images = first["report"].get("images_fetched", 0)
    extra = (first["seconds"] - kept["seconds"]) / max(1, images)
    size = len(Handler.data) / 1024
    print(f"# Import with images: {posts} posts, {posts + 1} distinct images "
          f"({size:.0f} KB PNG each) on loopback; SQLite; shared machine")  # fmt: skip
    print(f"hello request (in-process): {hello * 1e3:.3f} ms")
    print(f"import keeping addresses (baseline): {kept['seconds']:.2f} s")
    ratio = first["seconds"] / kept["seconds"]
    print(f"import downloading images: {first['seconds']:.2f} s = "
          f"{ratio:.2f}x the baseline; {images} images fetched")  # fmt: skip
    print(f"cost per image downloaded and stored: {extra * 1e3:.1f} ms = "
          f"{extra / hello:.0f}x a hello request")  # fmt: skip
    print(f"the same import again (nothing fetched): {again['seconds']:.2f} s = "
          f"{again['seconds'] / kept['seconds']:.2f}x the baseline; "
          f"{again['report'].get('images_fetched', 0)} fetched")  # fmt: skip


if __name__ == "__main__":
    main()
