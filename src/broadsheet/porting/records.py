"""What every reader yields, whatever the platform: plain records the writer turns into rows.

Each record has a ``key``: its id on the old platform (a WordPress post id,
a Ghost id, an email), which, with the source, is what makes an import
idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ImportRefused(Exception):
    """The file cannot be imported as a whole (not the format, truncated, unsafe, too big);
    nothing has been written."""


@dataclass(frozen=True)
class Source:
    """Where the records come from ("wordpress:https://old.example.com"): the first record."""

    name: str


@dataclass(frozen=True)
class AuthorRecord:
    key: str
    email: str
    name: str
    bio: str = ""
    role: str = "author"


@dataclass(frozen=True)
class TagRecord:
    key: str
    name: str
    slug: str = ""
    description: str = ""
    old_paths: tuple[str, ...] = ()


@dataclass
class PostRecord:
    key: str
    title: str
    markdown: str
    kind: str = "post"  # or "page"
    slug: str = ""
    status: str = "draft"  # draft, scheduled or published
    published_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    authors: list[str] = field(default_factory=list)  # AuthorRecord keys
    tags: list[str] = field(default_factory=list)  # TagRecord keys
    excerpt: str | None = None
    featured: bool = False
    feature_image: str | None = None
    meta_title: str | None = None
    meta_description: str | None = None
    canonical_url: str | None = None
    old_paths: list[str] = field(default_factory=list)
    # Converting HTML costs more than reading it: done only for a post that is written.
    to_markdown: Callable[[], str] | None = None

    def body(self) -> str:
        return self.to_markdown() if self.to_markdown is not None else self.markdown


@dataclass(frozen=True)
class LateImage:
    """A post's featured image that the file named only after the post (WordPress)."""

    post_key: str
    url: str


@dataclass(frozen=True)
class SubscriberRecord:
    key: str
    email: str
    status: str  # confirmed, unsubscribed (or pending, from Broadsheet's own export)
    created_at: datetime
    name: str = ""
    consent: str = ""
    confirmed_at: datetime | None = None  # None: the sign-up date is the consent date
    unsubscribed_at: datetime | None = None
    source: str = "import"


@dataclass(frozen=True)
class RedirectRecord:
    old_path: str
    target: str | None = None
    post_key: str | None = None


@dataclass(frozen=True)
class SettingsRecord:
    values: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    """Something in the file that will not be imported, and why (listed in the report)."""

    kind: str
    key: str
    reason: str


Record = (
    Source
    | AuthorRecord
    | TagRecord
    | PostRecord
    | LateImage
    | SubscriberRecord
    | RedirectRecord
    | SettingsRecord
    | Skipped
)
