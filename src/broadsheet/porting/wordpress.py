"""WordPress's WXR export (Tools → Export), read as a stream.

``lxml.etree.iterparse`` hands over one element of the channel at a time
(an author, a category, an item), which is cleared once read, so memory
stays flat however large the file.  Entities are never resolved, nothing
is fetched from the network, and a file with a DTD (how billion-laughs and
external-entity attacks begin) is refused before any element is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree

from broadsheet.porting.convert import gallery_ids, wordpress_to_markdown
from broadsheet.porting.records import (
    AuthorRecord,
    ImportRefused,
    LateImage,
    PostRecord,
    Record,
    Skipped,
    Source,
    TagRecord,
)

STATUSES = {"publish": "published", "future": "scheduled", "draft": "draft",
            "pending": "draft", "private": "draft"}  # fmt: skip
KINDS = {"post": "post", "page": "page"}


def _local(tag: Any) -> str:
    """An element's name without its namespace (``{http://…}post_id`` → ``post_id``)."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _fields(element: Any) -> dict[str, str]:
    """The text of each direct child, by local name (``content:encoded`` as ``content``,
    ``excerpt:encoded`` as ``excerpt``)."""
    found: dict[str, str] = {}
    for child in element:
        name = _local(child.tag)
        if name == "encoded":
            name = "excerpt" if "excerpt" in child.tag.rpartition("}")[0] else "content"
        if name not in found:
            found[name] = (child.text or "").strip() if name != "content" else child.text or ""
    return found


def _wp_date(value: str) -> datetime | None:
    """``2019-05-01 10:00:00`` (WordPress's GMT columns); None for its zero date."""
    if not value or value.startswith("0000"):
        return None
    try:
        return datetime.fromisoformat(value.strip()).replace(tzinfo=UTC)
    except ValueError:
        return None


def _rss_date(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError, IndexError):
        return None


def _path(url: str) -> str:
    parts = urlsplit(url.strip())
    path = unquote(parts.path) or "/"
    return f"{path}?{parts.query}" if parts.query else path


class _Body:
    """A post's stored content, converted to Markdown when called (when the post is written:
    its galleries then find the attachments read by then).  Sent to a converting process
    (``porting.prepare``) with only the attachments its galleries name."""

    def __init__(self, content: str, attachments: dict[str, str]) -> None:
        self.content, self.attachments = content, attachments

    def __call__(self) -> str:
        return wordpress_to_markdown(self.content, self._url)

    def _url(self, attachment_id: int) -> str | None:
        return self.attachments.get(str(attachment_id))

    def __reduce__(self) -> tuple[type[_Body], tuple[str, dict[str, str]]]:
        named = {str(i): self.attachments[str(i)] for i in gallery_ids(self.content)
                 if str(i) in self.attachments}  # fmt: skip
        return _Body, (self.content, named)


class WxrReader:
    """Iterate over a WXR file's records; raises ImportRefused on a file it cannot read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.attachments: dict[str, str] = {}  # attachment post id → file URL
        self.waiting_images: dict[str, str] = {}  # post id → attachment id not yet seen
        self.categories: dict[str, tuple[str, str]] = {}  # nicename → (parent nicename, name)
        self.source = ""

    def __iter__(self) -> Iterator[Record]:
        with self.path.open("rb") as file:
            yield from self._records(file)
        for post_id, attachment_id in self.waiting_images.items():
            if url := self.attachments.get(attachment_id):
                yield LateImage(post_id, url)

    def _records(self, file: Any) -> Iterator[Record]:
        parser = etree.iterparse(
            file,
            events=("start", "end"),
            resolve_entities=False,
            no_network=True,
            huge_tree=False,
            load_dtd=False,
            remove_comments=True,
            remove_pis=True,
        )
        depth = 0
        version_seen = False
        try:
            for event, element in parser:
                if event == "start":
                    if depth == 0:
                        self._check_root(element)
                    depth += 1
                    continue
                depth -= 1
                if depth != 2:
                    continue
                name = _local(element.tag)
                if name == "wxr_version":
                    version_seen = True
                elif name in ("base_blog_url", "link") and not self.source:
                    self.source = "wordpress:" + (element.text or "").strip().rstrip("/")
                    yield Source(self.source)
                elif name == "author":
                    yield self._author(element)
                elif name in ("category", "tag", "term"):
                    yield from self._term(name, element)
                elif name == "item":
                    if not version_seen:
                        raise ImportRefused("this is an RSS feed, not a WordPress export (WXR)")
                    yield from self._item(element)
                element.clear(keep_tail=False)
                parent = element.getparent()
                if parent is not None:
                    parent.remove(element)
        except etree.XMLSyntaxError as error:
            raise ImportRefused(f"the file is not complete, well-formed XML ({error})") from None
        if not version_seen:
            raise ImportRefused("this XML file is not a WordPress export (no wxr_version)")

    def _check_root(self, element: Any) -> None:
        info = element.getroottree().docinfo
        if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
            raise ImportRefused(
                "the file declares a DTD (entities), which an export never does: refused"
            )
        if _local(element.tag) != "rss":
            raise ImportRefused("this XML file is not a WordPress export (no <rss> root)")

    def _author(self, element: Any) -> AuthorRecord:
        f = _fields(element)
        name = f.get("author_display_name") or " ".join(
            part for part in (f.get("author_first_name"), f.get("author_last_name")) if part
        )
        login = f.get("author_login", "")
        return AuthorRecord(key=login, email=f.get("author_email", ""), name=name or login)

    def _term(self, name: str, element: Any) -> Iterator[Record]:
        f = _fields(element)
        if name == "term":
            taxonomy = f.get("term_taxonomy", "")
            if taxonomy not in ("category", "post_tag"):
                return
            name = "category" if taxonomy == "category" else "tag"
            slug, label = f.get("term_slug", ""), f.get("term_name", "")
            parent, description = f.get("term_parent", ""), f.get("term_description", "")
        elif name == "category":
            slug, label = f.get("category_nicename", ""), f.get("cat_name", "")
            parent, description = f.get("category_parent", ""), f.get("category_description", "")
        else:
            slug, label = f.get("tag_slug", ""), f.get("tag_name", "")
            parent, description = "", f.get("tag_description", "")
        slug = unquote(slug)
        term_id = f.get("term_id", "")
        if not label or not slug:
            yield Skipped(name, term_id or "?", "a term without a name or slug")
            return
        if name == "category":
            self.categories[slug] = (parent, label)
            chain, seen, at = [slug], {slug}, parent
            while at and at not in seen and at in self.categories:
                chain.insert(0, at)
                seen.add(at)
                at = self.categories[at][0]
            if parent:
                parent_name = self.categories.get(parent, ("", parent))[1]
                description = f"{description} (A category under “{parent_name}”.)".strip()
            old = (f"/category/{'/'.join(chain)}/", f"/?cat={term_id}")
        else:
            old = (f"/tag/{slug}/", f"/?tag={slug}")
        yield TagRecord(key=f"{name}:{slug}", name=label, slug=slug, description=description,
                        old_paths=old)  # fmt: skip

    def _item(self, element: Any) -> Iterator[Record]:
        f = _fields(element)
        post_id = f.get("post_id", "")
        kind = f.get("post_type", "")
        if kind == "attachment":
            self.attachments[post_id] = f.get("attachment_url", "") or f.get("guid", "")
            return
        if kind not in KINDS:
            yield Skipped(kind or "item", post_id, f"WordPress {kind or 'item'}s are not imported")
            return
        status = STATUSES.get(f.get("status", ""))
        if status is None:
            yield Skipped(kind, post_id, f"status {f.get('status')!r} (trash) is not imported")
            return
        tags: list[str] = []
        thumbnail = ""
        for child in element:
            local = _local(child.tag)
            if local == "category" and child.get("domain") in ("category", "post_tag"):
                prefix = "category" if child.get("domain") == "category" else "tag"
                tags.append(f"{prefix}:{unquote(child.get('nicename') or '')}")
            elif local == "postmeta":
                meta = _fields(child)
                if meta.get("meta_key") == "_thumbnail_id":
                    thumbnail = meta.get("meta_value", "")
        published = _wp_date(f.get("post_date_gmt", "")) or _wp_date(f.get("post_date", ""))
        if published is None and status != "draft":
            published = _rss_date(f.get("pubDate", ""))
        old_paths = [f"/?{'page_id' if kind == 'page' else 'p'}={post_id}"]
        if link := f.get("link"):
            path = _path(link)
            if not path.startswith("/?"):
                old_paths.append(path)
        feature_image = self.attachments.get(thumbnail) if thumbnail else None
        if thumbnail and feature_image is None:
            self.waiting_images[post_id] = thumbnail
        yield PostRecord(
            key=post_id,
            kind=KINDS[kind],
            title=f.get("title", "") or "(untitled)",
            markdown="",
            to_markdown=_Body(f.get("content", ""), self.attachments),
            slug=unquote(f.get("post_name", "")),
            status=status,
            published_at=published,
            created_at=_wp_date(f.get("post_date_gmt", "")) or published,
            authors=[f.get("creator", "")] if f.get("creator") else [],
            tags=tags,
            excerpt=f.get("excerpt") or None,
            featured=f.get("is_sticky") == "1",
            feature_image=feature_image,
            old_paths=old_paths,
        )
