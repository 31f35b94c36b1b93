"""Staff at work during a benchmark: a post published or edited every few seconds, through the
same services the admin calls, so every web process sees a new content generation each time.

Run by ``run_bench.py`` beside the mixed load, with the servers' own settings (the same
database and page cache store), until it is stopped or ``--seconds`` have passed.  The posts it
publishes carry a title starting with "Bench publish" and stay in the benchmark's database.

    .venv/bin/python bench/staff_at_work.py --every 5 --seconds 20
"""

from __future__ import annotations

import argparse
import time
import uuid

from sqlalchemy import select

from broadsheet import create_app, page_cache
from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content import services as content
from broadsheet.content.models import PostStatus
from broadsheet.content.staff_queries import staff_post
from broadsheet.extensions import db, utcnow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=5.0, help="seconds between changes")
    parser.add_argument("--seconds", type=float, default=60.0, help="stop after this long")
    args = parser.parse_args()
    app = create_app()  # the environment the servers got: DATABASE_URL, PAGE_CACHE_URL, …
    deadline = time.monotonic() + args.seconds
    changes, last = 0, None
    with app.app_context():
        author = db.session.scalars(select(User).order_by(User.id).limit(1)).one()
        while time.monotonic() < deadline:
            started = time.monotonic()
            if last is None or changes % 2 == 0:  # publish a new post, then edit it
                post = content.create_post(
                    db.session, title=f"Bench publish {uuid.uuid4().hex[:8]}",
                    markdown="Published while readers read.", authors=[author],
                    tags=["Bench"], status=PostStatus.PUBLISHED, now=utcnow(), actor=OPERATOR,
                )  # fmt: skip
            else:
                post = staff_post(db.session, last, actor=OPERATOR)
                content.update_post(
                    db.session, post, actor=OPERATOR, expected_version=post.version,
                    now=utcnow(), title=post.title, markdown=f"Edited at {utcnow():%H:%M:%S}.",
                    tags=["Bench"], slug=post.slug,
                )  # fmt: skip
            db.session.commit()
            last, changes = post.id, changes + 1
            db.session.remove()
            time.sleep(max(0.0, args.every - (time.monotonic() - started)))
        db.engine.dispose()
    page_cache.close(app)
    print(f"{changes} changes")


if __name__ == "__main__":
    main()
