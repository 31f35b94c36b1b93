"""The full export: one zip with everything a site holds, readable by people and by us.

``broadsheet.json`` holds the settings, authors, tags, posts and pages (their
Markdown and HTML), redirects and subscribers (with status and consent);
``posts/<slug>.md`` is each post as Markdown with front matter; ``media/``
holds the media folder's files when there is one.  Written as a stream:
rows are read in pages and written as they come, so a large site never sits
in memory.  Importing the archive into an empty site reproduces it
(``archive.ArchiveReader``).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content.models import Post, Tag, with_links
from broadsheet.content.redirects import Redirect
from broadsheet.extensions import DbSession
from broadsheet.newsletter.models import Subscriber
from broadsheet.settings.services import site_settings

ARCHIVE_JSON = "broadsheet.json"
ARCHIVE_FORMAT = "broadsheet-export"
PAGE = 500


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _rows(session: DbSession, query: Any) -> Iterator[Any]:
    """Rows of ``query`` a page at a time (by id), so the export's memory stays flat."""
    model = query.column_descriptions[0]["entity"]
    last = 0
    while True:
        page = list(session.scalars(query.where(model.id > last).order_by(model.id).limit(PAGE)))
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1].id
        session.expunge_all()


def _post(post: Post) -> dict[str, Any]:
    return {
        "id": post.id, "kind": post.kind.value, "title": post.title, "slug": post.slug,
        "status": post.status.value, "markdown": post.markdown, "html": post.html,
        "custom_excerpt": post.custom_excerpt, "featured": post.featured,
        "feature_image": post.feature_image, "meta_title": post.meta_title,
        "meta_description": post.meta_description, "published_at": _time(post.published_at),
        "created_at": _time(post.created_at), "updated_at": _time(post.updated_at),
        "tags": [tag.slug for tag in post.tags], "authors": [user.email for user in post.authors],
    }  # fmt: skip


def _front_matter(post: dict[str, Any]) -> str:
    """Markdown with front matter; each value JSON-quoted, which YAML reads too."""
    keys = (
        "title",
        "slug",
        "kind",
        "status",
        "published_at",
        "updated_at",
        "tags",
        "authors",
        "custom_excerpt",
        "featured",
        "feature_image",
        "meta_title",
        "meta_description",
    )
    lines = [f"{key}: {json.dumps(post[key], ensure_ascii=False)}" for key in keys]
    return "---\n" + "\n".join(lines) + "\n---\n\n" + post["markdown"]


def write_export(
    session: DbSession, out: IO[bytes], *, actor: Actor, now: datetime, media: Path | None = None
) -> dict[str, int]:
    """Write the whole site as a zip archive to ``out``; returns what it holds, counted.

    Only those who manage the site's settings may (it holds subscribers' addresses).
    """
    require(actor, Action.MANAGE_SETTINGS)
    require(actor, Action.MANAGE_SUBSCRIBERS)
    counts: dict[str, int] = {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open(ARCHIVE_JSON, "w", force_zip64=True) as raw:

            def put(text: str) -> None:
                raw.write(text.encode())

            settings = site_settings(session)
            put(
                json.dumps(
                    {
                        "format": ARCHIVE_FORMAT,
                        "version": 1,
                        "exported_at": _time(now),
                        "settings": {
                            "title": settings.title,
                            "description": settings.description,
                            "timezone": settings.timezone,
                            "posts_per_page": settings.posts_per_page,
                        },
                    }
                )[:-1]
            )

            def section(name: str, items: Iterator[dict[str, Any]]) -> None:
                put(f', "{name}": [')
                count = 0
                for item in items:
                    put(("," if count else "") + json.dumps(item, ensure_ascii=False))
                    count += 1
                put("]")
                counts[name] = count

            section(
                "authors",
                (
                    {
                        "email": u.email,
                        "name": u.name,
                        "slug": u.slug,
                        "bio": u.bio,
                        "role": u.role.value,
                    }
                    for u in _rows(session, select(User))
                ),
            )
            section(
                "tags",
                (
                    {"slug": t.slug, "name": t.name, "description": t.description}
                    for t in _rows(session, select(Tag))
                ),
            )

            query = select(Post).where(Post.deleted_at.is_(None)).options(*with_links())
            section("posts", (_post(post) for post in _rows(session, query)))
            section(
                "redirects",
                (
                    {"old_path": r.old_path, "target": r.target, "post_id": r.post_id}
                    for r in _rows(session, select(Redirect))
                ),
            )
            section(
                "subscribers",
                (
                    {
                        "email": s.email,
                        "status": s.status.value,
                        "created_at": _time(s.created_at),
                        "confirmed_at": _time(s.confirmed_at),
                        "unsubscribed_at": _time(s.unsubscribed_at),
                        "source": s.source,
                        "consent": s.consent,
                    }
                    for s in _rows(session, select(Subscriber))
                ),
            )
            put("}")
        # A second pass: the zip takes one member at a time.
        for post in _rows(session, query):
            archive.writestr(f"posts/{post.slug}.md", _front_matter(_post(post)))
        if media is not None and media.is_dir():
            count = 0
            for path in sorted(media.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, f"media/{path.relative_to(media).as_posix()}")
                    count += 1
            counts["media"] = count
    return counts
