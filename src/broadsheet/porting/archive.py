"""Broadsheet's own export (``export.write_export``), read back as import records.

``broadsheet.json`` is read from inside the zip as a stream (ijson), a
section per pass, so a large archive never sits in memory.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ijson

from broadsheet.porting.export import ARCHIVE_FORMAT, ARCHIVE_JSON
from broadsheet.porting.records import (
    AuthorRecord,
    ImportRefused,
    PostRecord,
    Record,
    RedirectRecord,
    SettingsRecord,
    Source,
    SubscriberRecord,
    TagRecord,
)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class ArchiveReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            with zipfile.ZipFile(path) as archive:
                if ARCHIVE_JSON not in archive.namelist():
                    raise ImportRefused(
                        f"this zip file is not a Broadsheet export (no {ARCHIVE_JSON})"
                    )
        except zipfile.BadZipFile as error:
            raise ImportRefused(f"the zip file cannot be read ({error})") from None

    def _items(self, prefix: str) -> Iterator[Any]:
        try:
            with zipfile.ZipFile(self.path) as archive, archive.open(ARCHIVE_JSON) as raw:
                yield from ijson.items(raw, prefix, use_float=True)
        except (ijson.JSONError, zipfile.BadZipFile, EOFError) as error:
            raise ImportRefused(f"the archive is not complete ({error})") from None

    def __iter__(self) -> Iterator[Record]:
        if next(self._items("format"), None) != ARCHIVE_FORMAT:
            raise ImportRefused("this zip file is not a Broadsheet export")
        yield Source(f"broadsheet:{next(self._items('exported_at'), '')}")
        yield SettingsRecord(dict(next(self._items("settings"), {})))
        for user in self._items("authors.item"):
            yield AuthorRecord(
                key=user["email"],
                email=user["email"],
                name=user["name"],
                bio=user.get("bio", ""),
                role=user.get("role", "author"),
            )
        for tag in self._items("tags.item"):
            yield TagRecord(
                key=tag["slug"],
                name=tag["name"],
                slug=tag["slug"],
                description=tag.get("description", ""),
            )
        for post in self._items("posts.item"):
            yield PostRecord(
                key=str(post["id"]),
                title=post["title"],
                markdown=post["markdown"],
                kind=post["kind"],
                slug=post["slug"],
                status=post["status"],
                published_at=_time(post.get("published_at")),
                created_at=_time(post.get("created_at")),
                updated_at=_time(post.get("updated_at")),
                authors=list(post.get("authors", [])),
                tags=list(post.get("tags", [])),
                excerpt=post.get("custom_excerpt"),
                featured=bool(post.get("featured")),
                feature_image=post.get("feature_image"),
                meta_title=post.get("meta_title"),
                meta_description=post.get("meta_description"),
            )
        for row in self._items("redirects.item"):
            post_id = row.get("post_id")
            yield RedirectRecord(
                old_path=row["old_path"],
                target=row.get("target"),
                post_key=str(post_id) if post_id is not None else None,
            )
        for row in self._items("subscribers.item"):
            created = _time(row.get("created_at")) or datetime.now(UTC)
            yield SubscriberRecord(
                key=row["email"],
                email=row["email"],
                status=row["status"],
                created_at=created,
                consent=row.get("consent", ""),
                confirmed_at=_time(row.get("confirmed_at")),
                unsubscribed_at=_time(row.get("unsubscribed_at")),
                source=row.get("source", "import"),
            )
