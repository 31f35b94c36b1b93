"""Images: the upload request, the worker's processing, and serving variants from the folder.

In a throwaway instance (SQLite, the folder store, production settings, 127.0.0.1), with
Broadsheet and ``bench/hello_app.py`` under gunicorn exactly as ``bench/run_bench.py``
starts them (its helpers are imported, not copied):

1. upload: times ``POST /api/v1/admin/images/`` of a 24-megapixel JPEG (6000 x 4000) with a
   bearer token, end to end over HTTP; the variants are only queued, the request checks
   the file and makes its 1200-px display copy (target ≤ 300 ms, median);
2. processing: times the worker's Pillow work on that JPEG, every variant (480, 960,
   1200, 1600, 2400 wide, WebP and JPEG) made and written to the store, in this process
   (target ≤ 1.5 s, median);
3. serving: wrk on one variant's address (a 960-px WebP) from the folder store, against
   hello measured just before and just after it (target ≥ 70% of hello's requests/s).

    .venv/bin/python bench/media_bench.py [--duration 5] [--runs 5]

The machine may be shared: the ratio against hello, measured in the same run, is the
figure to read; the absolute times are printed with the load average beside them.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from run_bench import broadsheet, ensure_wrk, gunicorn, load, server_env
from sqlalchemy import select

WIDTH, HEIGHT = 6000, 4000  # 24 megapixels
UPLOAD_TARGET_MS, PROCESS_TARGET_S, MIN_RATIO = 300.0, 1.5, 0.70
EMAIL, PASSWORD = "bench@example.com", "bench-password-0123"


def photo() -> bytes:
    """A 24-megapixel JPEG with a photo's kind of detail (gradients, shapes, grain)."""
    small = Image.linear_gradient("L").resize((WIDTH // 4, HEIGHT // 4))
    base = Image.merge("RGB", (small, small.rotate(90).resize(small.size), small.transpose(0)))
    draw = ImageDraw.Draw(base)
    for i in range(0, base.width, 23):
        draw.ellipse((i, (i * 7) % base.height, i + 90, (i * 7) % base.height + 60),
                     fill=(i % 256, (i * 3) % 256, 120))  # fmt: skip
    big = base.resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC).filter(ImageFilter.SMOOTH)
    grain = Image.effect_noise((WIDTH, HEIGHT), 24).convert("RGB")
    out = io.BytesIO()
    Image.blend(big, grain, 0.12).save(out, "JPEG", quality=88)
    return out.getvalue()


def upload(port: int, token: str, data: bytes) -> tuple[float, dict[str, object]]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    connection.request("POST", "/api/v1/admin/images/", body=body, headers={
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    })  # fmt: skip
    response = connection.getresponse()
    answer = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    connection.close()
    if response.status != 201:
        sys.exit(f"the upload answered {response.status}: {answer[:500]!r}")
    return elapsed, json.loads(answer)["image"]


def process_all(env: dict[str, str], runs: int) -> tuple[list[float], str]:
    """Process every uploaded image as the worker would; the time of each, and the address
    of a 960-px WebP variant."""
    os.environ.update(env)
    from broadsheet import create_app
    from broadsheet.extensions import db, utcnow
    from broadsheet.media import services, work
    from broadsheet.media.models import Image as Row
    from broadsheet.media.storage import current_store

    app = create_app()
    times: list[float] = []
    with app.app_context():
        ids = db.session.scalars(select(Row.id).order_by(Row.id)).all()[:runs]
        limits = services.Limits.from_config(app.config)
        for image_id in ids:
            source = work.claim(db.session, image_id, now=utcnow())
            db.session.commit()
            assert source is not None
            started = time.perf_counter()
            done = work.process(db.session, image_id, source, store=current_store(),
                                limits=limits, now=utcnow())  # fmt: skip
            db.session.commit()
            times.append(time.perf_counter() - started)
            assert done
        image = db.session.get(Row, ids[0])
        assert image is not None
        chosen = next(v for v in services.variants_of(db.session, image)
                      if v.width == 960 and v.format == "WEBP")  # fmt: skip
        return times, current_store().url(chosen.key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument("--runs", type=int, default=5, help="uploads (and processings) timed")
    args = parser.parse_args()
    wrk = ensure_wrk()
    data = photo()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="broadsheet-media-bench-") as folder:
        instance = Path(folder)
        env = server_env(f"sqlite:///{instance / 'bench.db'}", instance, "off", "media_bench:")
        env["MAIL_BACKEND"] = "memory"  # nothing is mailed here
        broadsheet(env, "init", "--owner-email", EMAIL, "--owner-password", PASSWORD,
                   "--owner-name", "Bench", timeout=300)  # fmt: skip
        token = broadsheet(env, "token", "create", EMAIL, timeout=120).split()[-1]
        with gunicorn("broadsheet:create_app()", env, instance / "app.log", ready="/") as site:
            upload(site, token, data)  # warm: imports, first connections
            uploads = [upload(site, token, data)[0] for _ in range(args.runs)]
        processing, variant = process_all(env, args.runs)
        with (
            gunicorn("hello_app:app", env, instance / "hello.log", ready="/") as hello,
            gunicorn("broadsheet:create_app()", env, instance / "app.log", ready="/") as site,
        ):
            before = load(wrk, hello, "/", args)
            served = load(wrk, site, variant, args)
            after = load(wrk, hello, "/", args)
    load_after = os.getloadavg()
    upload_ms = statistics.median(uploads)
    process_s = statistics.median(processing)
    ceiling = (before.rps + after.rps) / 2
    ratio = served.rps / ceiling

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print("\n".join([
        "# Broadsheet media benchmark",
        "",
        f"- Machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} at the start and "
        f"{load_after[0]:.2f} at the end (shared with whatever else runs)",
        f"- Image: {WIDTH} x {HEIGHT} JPEG, {len(data) / 1e6:.1f} MB; {args.runs} runs each",
        f"- Serving: wrk -t{args.threads} -c{args.connections} -d{args.duration}s on {variant}",
        "",
        "| figure | measured | target | |",
        "| --- | ---: | ---: | --- |",
        f"| upload request (median) | {upload_ms:.0f} ms | ≤ {UPLOAD_TARGET_MS:.0f} ms | "
        f"{met(upload_ms <= UPLOAD_TARGET_MS)} |",
        f"| processing into all variants (median) | {process_s:.2f} s | ≤ {PROCESS_TARGET_S} s | "
        f"{met(process_s <= PROCESS_TARGET_S)} |",
        f"| variant from the folder store | {served.rps:,.0f} req/s, p99 {served.p99_ms:.1f} ms "
        f"= {ratio:.0%} of hello ({ceiling:,.0f} req/s) | ≥ {MIN_RATIO:.0%} | "
        f"{met(ratio >= MIN_RATIO)} |",
    ]))  # fmt: skip
    if served.bad:
        print(f"({served.bad} requests failed)")


if __name__ == "__main__":
    main()
