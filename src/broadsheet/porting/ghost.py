"""Ghost's JSON export (versions 4 to 6), read as a stream with ijson.

The export is one JSON document whose tables (users, tags, posts and the
link tables) are arrays; each is read in a pass of its own, an item at a
time, so only the small maps between them (post → tags, post → authors,
post → meta) are held.  Each post's ``html`` is used, whatever editor
wrote it (mobiledoc or lexical).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import ijson

from broadsheet.porting.convert import html_to_markdown
from broadsheet.porting.records import (
    AuthorRecord,
    ImportRefused,
    PostRecord,
    Record,
    Skipped,
    Source,
    TagRecord,
)

SOURCE = "ghost"  # Ghost's ids are object ids, unique across sites
ROLES = {"Administrator": "admin", "Editor": "editor", "Author": "author",
         "Contributor": "contributor"}  # fmt: skip


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _site_relative(value: Any) -> str:
    """Ghost 5 writes its own address as ``__GHOST_URL__`` in exports: links become paths on
    this site (a post keeps its slug), images keep the old path (listed in the report)."""
    return str(value or "").replace("__GHOST_URL__", "")


class GhostReader:
    """Iterate over a Ghost export's records; raises ImportRefused on a file it cannot read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = self._find_base()

    def _items(self, table: str) -> Iterator[dict[str, Any]]:
        try:
            with self.path.open("rb") as file:
                for item in ijson.items(file, f"{self.base}.{table}.item", use_float=True):
                    if isinstance(item, dict):
                        yield item
        except ijson.JSONError as error:
            raise ImportRefused(f"the file is not complete, well-formed JSON ({error})") from None

    def _find_base(self) -> str:
        """Where the tables are: ``db.item.data`` (the admin's export) or ``data``."""
        try:
            with self.path.open("rb") as file:
                for prefix, event, value in ijson.parse(file):
                    if event == "map_key" and value == "data" and prefix in ("db.item", ""):
                        return f"{prefix}.data" if prefix else "data"
                    if event == "map_key" and prefix == "" and value != "db":
                        break
        except ijson.JSONError as error:
            raise ImportRefused(f"the file is not complete, well-formed JSON ({error})") from None
        raise ImportRefused("this JSON file is not a Ghost export (no db[].data)")

    def __iter__(self) -> Iterator[Record]:
        yield Source(SOURCE)
        found_posts = False
        role_names = {str(r.get("id")): str(r.get("name")) for r in self._items("roles")}
        user_roles = {str(link.get("user_id")): role_names.get(str(link.get("role_id")), "")
                      for link in self._items("roles_users")}  # fmt: skip
        for user in self._items("users"):
            roles = [r for r in ROLES if r == user_roles.get(str(user.get("id")))]
            yield AuthorRecord(
                key=str(user.get("id", "")),
                email=str(user.get("email") or ""),
                name=str(user.get("name") or ""),
                bio=str(user.get("bio") or ""),
                role=ROLES[roles[0]] if roles else "author",
            )
        for tag in self._items("tags"):
            name = str(tag.get("name") or "").strip()
            if tag.get("visibility") == "internal" and not name.startswith("#"):
                name = "#" + name
            slug = str(tag.get("slug") or "")
            yield TagRecord(key=str(tag.get("id", "")), name=name, slug=slug,
                            description=str(tag.get("description") or ""),
                            old_paths=(f"/tag/{slug}/",) if slug else ())  # fmt: skip
        post_tags = self._links("posts_tags", "tag_id")
        post_authors = self._links("posts_authors", "author_id")
        meta = {
            str(row.get("post_id")): row
            for row in self._items("posts_meta")
            if row.get("meta_title") or row.get("meta_description")
        }
        for post in self._items("posts"):
            found_posts = True
            yield self._post(post, post_tags, post_authors, meta)
        if not found_posts:
            raise ImportRefused("this Ghost export holds no posts array")

    def _links(self, table: str, column: str) -> dict[str, list[str]]:
        rows = sorted(
            self._items(table), key=lambda row: (str(row.get("post_id")), row.get("sort_order", 0))
        )
        links: dict[str, list[str]] = {}
        for row in rows:
            links.setdefault(str(row.get("post_id")), []).append(str(row.get(column)))
        return links

    def _post(
        self,
        post: dict[str, Any],
        post_tags: dict[str, list[str]],
        post_authors: dict[str, list[str]],
        meta: dict[str, dict[str, Any]],
    ) -> PostRecord | Skipped:
        key = str(post.get("id", ""))
        kind = post.get("type") or ("page" if post.get("page") else "post")
        status = str(post.get("status") or "draft")
        if kind not in ("post", "page"):
            return Skipped(str(kind), key, f"Ghost {kind}s are not imported")
        if status == "sent":
            status = "draft"  # sent by email only, never on the web: kept as a draft
        authors = post_authors.get(key) or [str(post.get("author_id") or "")]
        extra = meta.get(key, {})
        slug = str(post.get("slug") or "")
        return PostRecord(
            key=key,
            kind=kind,
            title=str(post.get("title") or ""),
            markdown="",
            to_markdown=partial(html_to_markdown, _site_relative(post.get("html"))),
            slug=slug,
            status=status if status in ("published", "scheduled") else "draft",
            published_at=_time(post.get("published_at")),
            created_at=_time(post.get("created_at")),
            updated_at=_time(post.get("updated_at")),
            authors=[a for a in authors if a],
            tags=post_tags.get(key, []),
            excerpt=post.get("custom_excerpt") or None,
            featured=bool(post.get("featured")),
            feature_image=_site_relative(post.get("feature_image")) or None,
            meta_title=extra.get("meta_title") or post.get("meta_title") or None,
            meta_description=extra.get("meta_description") or post.get("meta_description") or None,
            canonical_url=post.get("canonical_url") or None,
            old_paths=[f"/{slug}/"] if slug else [],
        )
