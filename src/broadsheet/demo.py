# Over 400 lines: word lists, post builder and bulk loader serve one command (`broadsheet demo`).
"""Deterministic demo content that looks like a real technical blog.

Fast enough for 100,000 posts: every Markdown block is rendered once and
posts are assembled from the rendered pieces (a block-by-block render gives
the same HTML as rendering the whole post, which a test checks), and rows
go in with COPY on PostgreSQL or executemany elsewhere.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.bulk import bulk_insert, next_id, reset_sequence
from broadsheet.content.models import Post, PostAuthor, PostKind, PostStatus, PostTag, Tag
from broadsheet.content.rendering import render_markdown
from broadsheet.content.search import indexed_after
from broadsheet.content.services import RESERVED_SLUGS, create_post
from broadsheet.extensions import DbSession
from broadsheet.newsletter.demo import fill_subscribers
from broadsheet.page_cache import mark_changed
from broadsheet.slugs import make_slug

TOPICS = [
    "Python", "Flask", "Django", "PostgreSQL", "SQLite", "Celery", "RabbitMQ", "Redis",
    "Docker", "Kubernetes", "Rust", "Go", "JavaScript", "TypeScript", "CSS", "HTML",
    "Accessibility", "Performance", "Testing", "pytest", "Security", "Linux", "Git", "Vim",
    "Emacs", "SQLAlchemy", "Alembic", "asyncio", "Typing", "Packaging", "Markdown",
    "Nginx", "gunicorn", "HTTP", "DNS", "TLS", "Email", "Observability", "Logging",
    "Caching", "Search", "Unicode", "Time zones", "Databases", "Indexes", "Queues",
    "Open source", "Writing", "Career", "Remote work", "Teaching", "Code review",
    "Refactoring", "Architecture", "APIs", "OpenAPI", "GraphQL", "WebSockets", "Browsers",
    "Static sites", "Heroku", "Deployment", "CI", "Shell", "Make", "Regex", "Data",
    "NumPy", "pandas", "Jupyter", "Machine learning", "Statistics", "Benchmarks",
    "Profiling", "Memory", "Concurrency", "Threads", "Networking", "Raspberry Pi",
    "Keyboards", "Typography", "Design", "Books", "Conferences", "Hiring", "Documentation",
    "Licensing", "Privacy", "Newsletters", "Feeds", "RSS", "IndieWeb", "Blogging",
]  # fmt: skip
FACETS = [
    "internals", "tips", "tooling", "patterns", "history", "pitfalls", "in production",
    "for beginners", "at scale", "releases", "migrations", "debugging",
]  # fmt: skip
TITLES = [
    "Understanding {a}", "Why we moved from {a} to {b}", "{a} in production: lessons learned",
    "A gentle introduction to {a}", "{n} things I wish I knew about {a}",
    "Debugging {a} at three in the morning", "What is new in {a} this year", "Notes on {a} and {b}",
    "How {a} really works", "The case against {a}", "The case for {a}",
    "{a} without the hype", "A year of {a}", "Making {a} fast", "Small lessons from {a}",
    "Reading the {a} source code", "When {a} meets {b}", "Testing {a} the boring way",
    "{a}: a field guide", "Everything I got wrong about {a}",
]  # fmt: skip
OPENINGS = [
    "Last week I spent an afternoon with {a}, and it changed how I think about {b}.",
    "Most advice about {a} is written for teams ten times our size.",
    "This started as a note to myself and grew into something worth sharing.",
    "If you have ever stared at a slow page and wondered where the time went, read on.",
    "There is a quiet kind of joy in deleting code that nobody needs any more.",
    "We shipped the first version of this on a Friday, which was our first mistake.",
]  # fmt: skip
SENTENCES = [
    "The documentation is good, but it assumes you already know what you are looking for.",
    "Measure first: the slow part is rarely the part you suspect.",
    "A boring solution that everyone understands beats a clever one that nobody can change.",
    "We kept the old path running beside the new one until the numbers agreed.",
    "Indexes are cheap until they are not, so we checked every query plan by hand.",
    "The error message told us exactly what was wrong; we just did not read it.",
    "It took three attempts to get the migration right, and each one taught us something.",
    "Nothing here is new, but putting it in one place saved our team hours.",
    "Our first benchmark was wrong because the cache was warm and we did not notice.",
    "The fix was four lines; finding where to put them took two days.",
    "Good defaults matter more than options, because most people never change them.",
    "Every retry needs a limit, and every limit needs a message that says what happened.",
    "We wrote the test first, watched it fail, and only then believed the bug was real.",
    "Readers noticed the faster pages before we announced anything.",
    "Time zones are where confident assumptions go to die.",
    "A queue is a promise that work will happen later, so be careful what you promise.",
    "Logging the request id everywhere turned a day of guessing into ten minutes of reading.",
    "The smallest change that could possibly work was, for once, also the right one.",
    "Keep the transaction short and do the slow work after it commits.",
    "We removed a dependency and the build got faster and simpler at once.",
    "Pair programming on the nasty parts paid for itself within a week.",
    "A checklist is not bureaucracy when it stops the same outage twice.",
    "If a page needs a query per row, it will be slow on exactly the day it matters.",
    "Write the upgrade notes while you still remember why things changed.",
]  # fmt: skip
HEADINGS = [
    "Background", "What we tried first", "The numbers", "What went wrong", "The fix",
    "Trade-offs", "What I would do differently", "Further reading", "Setting it up",
    "A closer look", "Edge cases", "In practice", "Wrapping up",
]  # fmt: skip
CODE_BLOCKS = [
    '```python\ndef archive(tag, page=1, per_page=10):\n    """Newest posts first."""\n'
    "    return tag.posts.order_by(Post.published_at.desc()).limit(per_page)\n```",
    "```sql\nCREATE INDEX ix_post_tags_archive\n    ON post_tags (tag_id, published_at, post_id);\n"
    "EXPLAIN ANALYZE SELECT post_id FROM post_tags WHERE tag_id = 42\n"
    " ORDER BY published_at DESC LIMIT 10;\n```",
    "```bash\npython -m venv .venv\n. .venv/bin/activate\npip install -e '.[test]'\n"
    "pytest -x -q\n```",
    "```javascript\nconst res = await fetch('/api/v1/posts?limit=10');\n"
    "const { posts } = await res.json();\nconsole.log(posts.map((p) => p.title));\n```",
    "```python\n@shared_task(bind=True, acks_late=True)\n"
    "def send_batch(self, batch_id: int) -> None:\n"
    "    batch = db.session.get(Batch, batch_id)\n    for delivery in batch.pending():\n"
    "        deliver(delivery)\n```",
    "```toml\n[project]\nname = \"example\"\nrequires-python = \">=3.11\"\n"
    'dependencies = ["flask>=3"]\n```',
    "```rust\nfn main() {\n    let words: Vec<&str> = \"small fast honest\".split(' ').collect();\n"
    '    println!("{}", words.join(", "));\n}\n```',
]  # fmt: skip
AUTHORS = [
    ("Maya Okafor", "Writes about databases and the people who run them."),
    ("Tomás Ferreira", "Backend developer; collects keyboards and slow queries."),
    ("Ingrid Halvorsen", "Editor. Believes every post can lose a third of its words."),
    ("Ravi Chandran", "Builds queues, breaks queues, writes about both."),
    ("Lena Fischer", "Front-end and accessibility, with strong opinions on type."),
    ("Kenji Watanabe", "Operations and observability; on call more often than he would like."),
    ("Amara Nwosu", "Teaches Python at night and ships it by day."),
    ("Sofia Rossi", "Security reviews, threat models and the occasional rant."),
]
POPULAR_TAGS = 100  # the tags demo subscribers choose from
PAGES = [
    ("About", "about", "This blog is written by a small team that builds things in Python.\n\n"
     "We write about what we learn, what breaks, and what we would do again."),
    ("Colophon", "colophon", "Published with Broadsheet, a small publishing platform in Python.\n\n"
     "Set in the reader's own system fonts."),
]  # fmt: skip


@dataclass
class DemoReport:
    posts: int = 0
    tags: int = 0
    authors: int = 0
    pages: int = 0
    subscribers: int = 0


@dataclass(frozen=True)
class Block:
    markdown: str
    html: str


def _render_blocks(sources: Iterable[str]) -> list[Block]:
    return [Block(source, render_markdown(source).html) for source in sources]


def tag_names(count: int) -> list[str]:
    """``count`` tag names, the popular ones first: topics, then topic-and-facet pairs."""
    names = list(TOPICS) + [f"{t} {f}" for f, t in itertools.product(FACETS, TOPICS)]
    number = 2
    while len(names) < count:  # past the pool: numbered series
        names += [f"{t} part {number}" for t in TOPICS]
        number += 1
    return names[:count]


class _Zipf:
    """Draw indexes with a long tail: a few tags are on many posts, most on few."""

    def __init__(self, size: int, rng: random.Random, exponent: float = 1.05) -> None:
        self.rng = rng
        self.cumulative = list(itertools.accumulate(1 / (r + 1) ** exponent for r in range(size)))

    def draw(self) -> int:
        return bisect.bisect(self.cumulative, self.rng.random() * self.cumulative[-1])

    def distinct(self, count: int) -> list[int]:
        chosen: list[int] = []
        while len(chosen) < min(count, len(self.cumulative)):
            index = self.draw()
            if index not in chosen:
                chosen.append(index)
        return chosen


def fill(
    session: DbSession,
    *,
    posts: int,
    tags: int,
    authors: int,
    now: datetime,
    seed: int = 1,
    subscribers: int = 0,
) -> DemoReport:
    """Add demo authors, tags, posts, pages and subscribers; flushes, the caller commits.

    The same seed gives the same content (the subscribers draw from their own
    generator, so asking for them changes no post).  Run again, it adds more
    posts and subscribers and reuses the authors and tags already there.
    """
    mark_changed(session)  # rows go in with COPY, which no session event sees
    rng = random.Random(seed)
    report = DemoReport()
    users = _ensure_authors(session, authors, now, report)
    tag_ids = _ensure_tags(session, tag_names(tags), now, report)
    report.pages = _ensure_pages(session, users[0], now)

    paragraphs = _render_blocks(_paragraph(rng) for _ in range(400))
    codes = _render_blocks(CODE_BLOCKS)
    headings = _render_blocks(f"## {h}" for h in HEADINGS)
    lists = _render_blocks(
        "\n".join(f"- {rng.choice(SENTENCES)}" for _ in range(3)) for _ in range(30)
    )
    quotes = _render_blocks(f"> {rng.choice(SENTENCES)}" for _ in range(20))
    excerpts = {block.markdown: render_markdown(block.markdown).excerpt for block in paragraphs}

    taken = set(session.scalars(select(Post.slug))) | RESERVED_SLUGS
    tag_draw = _Zipf(len(tag_ids), rng)
    post_id = first_post_id = next_id(session, Post.id)
    span = timedelta(days=3650)
    start = now - span
    post_rows, tag_rows, author_rows = [], [], []
    for index in range(posts):
        chosen_tags = [tag_ids[i] for i in tag_draw.distinct(rng.choice((1, 2, 3, 3, 4, 5)))]
        topic = TOPICS[rng.randrange(len(TOPICS))]
        other = TOPICS[rng.randrange(len(TOPICS))]
        title = rng.choice(TITLES).format(a=topic, b=other, n=rng.randint(3, 12))
        slug = base = make_slug(title, max_length=190)
        number = 1
        while slug in taken:
            number += 1
            slug = f"{base}-{number}"
        taken.add(slug)
        blocks = _body(rng, paragraphs, codes, headings, lists, quotes)
        roll = rng.random()
        if roll < 0.02:
            status, published_at = PostStatus.DRAFT, None
        elif roll < 0.025 or index == posts - 1:
            status = PostStatus.SCHEDULED
            published_at = now + timedelta(minutes=2 + 90 * rng.random() * (index % 7))
        else:
            status = PostStatus.PUBLISHED
            published_at = start + span * ((index + rng.random()) / max(posts, 1))
        listed = published_at if status is PostStatus.PUBLISHED else None
        post_rows.append(
            {
                "id": post_id,
                "kind": PostKind.POST.value,
                "title": title,
                "slug": slug,
                "markdown": "\n\n".join(b.markdown for b in blocks) + "\n",
                "html": "".join(b.html for b in blocks),
                "custom_excerpt": None,
                "excerpt": excerpts[blocks[0].markdown],
                "status": status.value,
                "published_at": published_at,
                "created_at": published_at or now,
                "updated_at": published_at or now,
                "featured": rng.random() < 0.01,
                "feature_image": None,
                "meta_title": None,
                "meta_description": None,
                "version": 1,
            }
        )
        for position, tag_id in enumerate(chosen_tags):
            tag_rows.append(
                {"post_id": post_id, "tag_id": tag_id, "position": position, "published_at": listed}
            )
        writers = [rng.choice(users)] + ([rng.choice(users)] if rng.random() < 0.1 else [])
        for position, user in enumerate(dict.fromkeys(writers)):
            author_rows.append(
                {
                    "post_id": post_id,
                    "user_id": user.id,
                    "position": position,
                    "published_at": listed,
                }
            )
        post_id += 1
    with indexed_after(session, first_post_id):  # once, not for the posts and then their tags
        bulk_insert(session, Post.__table__, post_rows)  # type: ignore[arg-type]
        bulk_insert(session, PostTag.__table__, tag_rows)  # type: ignore[arg-type]
        bulk_insert(session, PostAuthor.__table__, author_rows)  # type: ignore[arg-type]
    reset_sequence(session, "posts")
    report.posts = posts
    report.subscribers = fill_subscribers(
        session,
        subscribers,
        tag_ids=tag_ids[:-1][:POPULAR_TAGS],  # the last is the internal one
        now=now,
        rng=random.Random(f"{seed}:subscribers"),
    )
    return report


def _paragraph(rng: random.Random) -> str:
    first = rng.choice(OPENINGS).format(a=rng.choice(TOPICS), b=rng.choice(TOPICS).lower())
    rest = rng.sample(SENTENCES, 4)
    if rng.random() < 0.3:
        tool = rng.choice(["EXPLAIN", "git bisect", "pytest -x"])
        rest[1] = f"{rest[1][:-1]}, which is why `{tool}` matters."
    if rng.random() < 0.2:
        rest[2] = f"**{rest[2]}**"
    return " ".join([first, *rest])


def _body(
    rng: random.Random,
    paragraphs: list[Block],
    codes: list[Block],
    headings: list[Block],
    lists: list[Block],
    quotes: list[Block],
) -> list[Block]:
    blocks = [rng.choice(paragraphs)]
    for heading in rng.sample(headings, rng.randint(1, 3)):
        blocks.append(heading)
        blocks.append(rng.choice(paragraphs))
        extra = rng.random()
        if extra < 0.35:
            blocks.append(rng.choice(codes))
        elif extra < 0.5:
            blocks.append(rng.choice(lists))
        elif extra < 0.6:
            blocks.append(rng.choice(quotes))
    return blocks


def _ensure_authors(
    session: DbSession, count: int, now: datetime, report: DemoReport
) -> list[User]:
    wanted = [AUTHORS[i % len(AUTHORS)] for i in range(max(count, 1))]
    users = []
    for number, (name, bio) in enumerate(wanted, start=1):
        if number > len(AUTHORS):
            name = f"{name} {number // len(AUTHORS) + 1}"
        email = f"{make_slug(name)}@example.com"
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = User(
                email=email,
                name=name,
                slug=make_slug(name),
                bio=bio,
                role=Role.AUTHOR,
                password_hash=None,
                created_at=now,
            )
            session.add(user)
            report.authors += 1
        users.append(user)
    session.flush()
    return users


def _ensure_tags(
    session: DbSession, names: list[str], now: datetime, report: DemoReport
) -> list[int]:
    existing: dict[str, int] = dict(session.execute(select(Tag.slug, Tag.id)).all())
    rows = []
    tag_id = next_id(session, Tag.id)
    ids = []
    for name in [*names, "#featured-in-newsletter"]:
        slug = make_slug(name)
        if slug not in existing:
            existing[slug] = tag_id
            rows.append(
                {
                    "id": tag_id,
                    "name": name,
                    "slug": slug,
                    "created_at": now,
                    "description": f"Posts about {name}." if _described(name) else "",
                }
            )
            tag_id += 1
        ids.append(existing[slug])
    bulk_insert(session, Tag.__table__, rows)  # type: ignore[arg-type]
    reset_sequence(session, "tags")
    report.tags = len(rows)
    return ids


def _described(name: str) -> bool:
    """Popular topics get a description; the long tail mostly does not."""
    return name in TOPICS


def _ensure_pages(session: DbSession, author: User, now: datetime) -> int:
    added = 0
    for title, slug, body in PAGES:
        if session.scalar(select(Post.id).where(Post.slug == slug)) is None:
            create_post(
                session,
                title=title,
                slug=slug,
                markdown=body,
                authors=[author],
                now=now,
                kind=PostKind.PAGE,
                status=PostStatus.PUBLISHED,
                actor=OPERATOR,  # the demo runs from the CLI, as the operator
            )
            added += 1
    return added
