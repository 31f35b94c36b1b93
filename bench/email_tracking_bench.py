"""Newsletter opens and clicks: what tracking costs each email, and each pixel or click.

In this process, on SQLite in a temporary folder, with a post of 20 links:

1. composes the newsletter email for ``--emails`` deliveries with tracking
   off (the baseline) and with opens and clicks on, and prints the median
   time per email and the ratio on/off;
2. times the tracking pixel and the click redirect through the test client
   beside ``bench/hello_app.py`` through its own, and prints each median as a
   ratio to hello's.

    .venv/bin/python bench/email_tracking_bench.py [--emails 200] [--requests 300]

The machine may be shared: only the ratios, measured in the same run, mean
anything.  Every loop is bounded in count and in time (``--seconds``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html

from broadsheet import create_app
from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_user
from broadsheet.cli import upgrade_schema
from broadsheet.content.models import PostStatus
from broadsheet.content.services import create_post
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter.emails import NewsletterComposer
from broadsheet.newsletter.models import Delivery, Send, Subscriber, SubscriberStatus

sys.path.insert(0, str(Path(__file__).parent))
from hello_app import app as hello_app

LINKS = 20
PASSWORD = "bench horse battery staple"  # noqa: S105 (a throwaway account)


def post_markdown() -> str:
    lines = [
        f"Paragraph {n} with [a link](https://example.org/page/{n}/?q={n})." for n in range(LINKS)
    ]
    return "\n\n".join(lines)


def timed(call: Callable[[int], None], count: int, deadline: float) -> list[float]:
    times = []
    for n in range(count):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        call(n)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=60.0)
    options = parser.parse_args()
    logging.disable(logging.INFO)
    folder = Path(tempfile.mkdtemp(prefix="broadsheet-opens-bench-"))
    try:
        app = create_app(
            {
                "INSTANCE_PATH": str(folder),
                "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
                "SECRET_KEY": "opens-bench-secret-key-0123456789",
                "SITE_URL": "http://127.0.0.1",
                "MAIL_BACKEND": "memory",
                "CELERY_BROKER_URL": "memory://",
            }
        )
        deadline = time.monotonic() + options.seconds
        with app.app_context():
            upgrade_schema()
            writer = create_user(
                db.session, email="bench@example.com", name="Bench Writer", role=Role.OWNER,
                password=PASSWORD, now=utcnow(), actor=OPERATOR,
            )  # fmt: skip
            post = create_post(
                db.session, title="Links", markdown=post_markdown(), authors=[writer],
                now=utcnow(), status=PostStatus.PUBLISHED, actor=OPERATOR,
            )  # fmt: skip
            subscriber = Subscriber(
                email="reader@example.com", status=SubscriberStatus.CONFIRMED, source="bench"
            )
            send = Send(post_id=post.id, recipients=1)
            db.session.add_all([subscriber, send])
            db.session.flush()
            delivery = Delivery(
                send_id=send.id, subscriber_id=subscriber.id, next_attempt_at=utcnow()
            )
            db.session.add(delivery)
            db.session.commit()
            post_id, subscriber_id, delivery_id = post.id, subscriber.id, delivery.id

            composed = {}
            medians = {}
            for name, on in (("off", False), ("on", True)):
                app.config["STATS_EMAIL_OPENS"] = app.config["STATS_EMAIL_CLICKS"] = on
                composer = NewsletterComposer(db.session, post_id, app.config)

                def compose(
                    _n: int, composer: NewsletterComposer = composer, name: str = name
                ) -> None:
                    composed[name] = composer.compose(
                        subscriber_id, "reader@example.com", delivery_id
                    )

                medians[name] = statistics.median(timed(compose, options.emails, deadline))
            db.session.remove()
        [(html, _)] = composed["on"].alternatives
        page = lxml.html.fromstring(str(html))
        pixel = next(
            img.get("src") for img in page.iter("img") if "/email/open/" in img.get("src", "")
        )
        click = next(a.get("href") for a in page.iter("a") if "/email/click/" in a.get("href", ""))
        client, hello = app.test_client(), hello_app.test_client()

        def get(address: str, status: int) -> Callable[[int], None]:
            path = urlsplit(address).path

            def call(_n: int) -> None:
                answer = client.get(path)
                if answer.status_code != status:
                    raise SystemExit(f"{path}: {answer.status_code}, not {status}")

            return call

        def hello_call(_n: int) -> None:
            hello.get("/")

        requests = {
            "hello": statistics.median(timed(hello_call, options.requests, deadline)),
            "pixel": statistics.median(timed(get(pixel, 200), options.requests, deadline)),
            "click": statistics.median(timed(get(click, 302), options.requests, deadline)),
        }
        print("Newsletter tracking (in process, SQLite; the machine may be shared)")
        print(f"{'compose one email':<28}{'median ms':>12}{'/ off':>8}")
        for name in ("off", "on"):
            ratio = medians[name] / medians["off"]
            print(f"{'tracking ' + name:<28}{medians[name] * 1000:>12.2f}{ratio:>8.2f}")
        print(f"{'request':<28}{'median ms':>12}{'/ hello':>8}")
        for name, median in requests.items():
            print(f"{name:<28}{median * 1000:>12.2f}{median / requests['hello']:>8.1f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
