"""Records to rows, a batch at a time, each item once.

Every row an import writes is recorded as an ``ImportItem`` under its source
and key in the same transaction, and a batch's items are looked up before
it is written: running the file again, or resuming after a killed worker,
skips what is done.  The door commits after each batch (``Writer.write``
yields there), so a crash loses at most the batch in flight, never half of
one.  Posts are written as the editor writes them (rendered and sanitised by
``content.rendering``, linked, listed, with a first revision), but a batch
at a time, not a query per post.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, text, update

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.accounts.services import create_user
from broadsheet.addresses import is_email_address, normalise_email
from broadsheet.bulk import bulk_insert, insert_returning_ids
from broadsheet.content.models import (
    Post,
    PostAuthor,
    PostKind,
    PostRevision,
    PostStatus,
    PostTag,
    Tag,
)
from broadsheet.content.redirects import (
    RedirectSource,
    point_at_path,
    point_at_post,
    point_many_at_posts,
)
from broadsheet.content.rendering import shorten
from broadsheet.content.search import indexed_together
from broadsheet.content.services import RESERVED_SLUGS, check_slug, listing_date, revision_row
from broadsheet.content.tags import MAX_DESCRIPTION, find_or_create_tags
from broadsheet.errors import DomainError, Invalid
from broadsheet.extensions import DbSession
from broadsheet.media.models import Image
from broadsheet.media.services import ADDRESS, image_address, record_usage_of, upload_image
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from broadsheet.page_cache import mark_changed
from broadsheet.porting import images, prepare
from broadsheet.porting.models import ImportItem
from broadsheet.porting.records import (
    AuthorRecord,
    LateImage,
    PostRecord,
    Record,
    RedirectRecord,
    SettingsRecord,
    Skipped,
    Source,
    SubscriberRecord,
    TagRecord,
)
from broadsheet.settings.services import site_settings, update_site_settings
from broadsheet.slugs import make_slug

BATCH = 200
# Posts a batch holds while their images are being downloaded, so that a worker's slice stays
# short: a run starts with such batches and goes back to BATCH after one that fetched nothing.
BATCH_FETCHING = 20
IMAGES = "web"  # the import items' source for fetched images: one download per address, ever
LISTED = 200  # how many skipped rows, clashes and kept images a report lists by name


@dataclass
class Report:
    """What an import did (or, for a dry run, would do)."""

    created: dict[str, int] = field(default_factory=dict)
    already_imported: dict[str, int] = field(default_factory=dict)
    matched: dict[str, int] = field(default_factory=dict)  # authors and tags already here
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_count: int = 0
    clashes: list[dict[str, str]] = field(default_factory=list)
    clash_count: int = 0
    images_kept: list[dict[str, str]] = field(default_factory=list)  # url, reason
    images_kept_count: int = 0
    images_fetched: int = 0
    canonical_skipped: int = 0
    names_skipped: int = 0
    redirects: int = 0
    items: int = 0

    def count(self, table: dict[str, int], kind: str, n: int = 1) -> None:
        table[kind] = table.get(kind, 0) + n

    def skip(self, kind: str, key: str, reason: str) -> None:
        self.skipped_count += 1
        if len(self.skipped) < LISTED:
            self.skipped.append({"kind": kind, "key": key, "reason": reason})

    def clash(self, kind: str, wanted: str, given: str) -> None:
        self.clash_count += 1
        if len(self.clashes) < LISTED:
            self.clashes.append({"kind": kind, "wanted": wanted, "given": given})

    def image(self, url: str, reason: str) -> None:
        self.images_kept_count += 1
        if len(self.images_kept) < LISTED:
            self.images_kept.append({"url": url, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _status(word: str, published_at: datetime | None, now: datetime) -> PostStatus:
    if word == "published" and published_at is not None and published_at > now:
        return PostStatus.SCHEDULED
    if word == "scheduled" and (published_at is None or published_at <= now):
        return PostStatus.PUBLISHED if published_at else PostStatus.DRAFT
    return {"published": PostStatus.PUBLISHED, "scheduled": PostStatus.SCHEDULED}.get(
        word, PostStatus.DRAFT
    )


@dataclass
class _Batch:
    """Posts on their way: their bodies being converted and rendered."""

    records: list[PostRecord]
    prepared: prepare.Pending
    last: int  # the number of the batch's last record in the file
    fetching: bool = False  # converted only: images are fetched, then it is rendered


class Writer:
    """Writes one file's records; ``write`` yields after each batch for the door to commit."""

    def __init__(
        self,
        session: DbSession,
        *,
        actor: Actor,
        now: datetime,
        job_id: int | None,
        source: str = "import",
        fetching: images.Fetching | None = None,
        processes: int | None = None,
    ) -> None:
        require(actor, Action.MANAGE_SETTINGS)
        self.session, self.actor, self.now, self.job_id = session, actor, now, job_id
        self.source = source
        self.fetching = fetching
        self.fetched: dict[str, str] = {}  # an image's address in the file → the post's
        self.down: set[str] = set()  # host:port that did not answer: not asked again this run
        self.batch = BATCH if fetching is None else BATCH_FETCHING
        self.downloads = 0  # downloads tried (each address once)
        self.report = Report()
        self.users: dict[str, int] = {}  # author key → user id
        self.tags: dict[str, tuple[int, str]] = {}  # tag key → (tag id, name)
        self.fallback_author: int | None = None
        self.preparer = prepare.Preparer(processes)
        self.pending: _Batch | None = None
        self.written = 0  # the number of the last record of the last batch written

    # Items ----------------------------------------------------------------------------------

    def _known(
        self, kind: str, keys: Iterable[str], source: str | None = None
    ) -> dict[str, int | None]:
        keys = list(keys)
        if not keys:
            return {}
        rows = self.session.execute(
            select(ImportItem.source_id, ImportItem.target_id).where(
                ImportItem.source == (source or self.source),
                ImportItem.kind == kind,
                ImportItem.source_id.in_(keys),
            )
        )
        return {row[0]: row[1] for row in rows}

    def _remember(
        self, kind: str, key: str, target_id: int | None, source: str | None = None
    ) -> None:
        self.session.add(
            ImportItem(
                source=source or self.source,
                kind=kind,
                source_id=key[:300],
                target_id=target_id,
                job_id=self.job_id,
                created_at=self.now,
            )
        )

    def _remember_many(self, kind: str, pairs: list[tuple[str, int]]) -> None:
        rows = [
            {"source": self.source, "kind": kind, "source_id": key[:300], "target_id": target,
             "job_id": self.job_id, "created_at": self.now}
            for key, target in pairs
        ]  # fmt: skip
        bulk_insert(self.session, ImportItem.__table__, rows)  # type: ignore[arg-type]

    # The stream -----------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> Iterator[int]:
        """Write every record, yielding the number of records done after each batch that
        wrote something (the caller commits there).  Posts and subscribers are written in
        batches, the rest as they come.  While a batch of posts is written, the next one is
        being converted and rendered (``porting.prepare``): a batch is written only once
        every record before it is."""
        posts: list[PostRecord] = []
        subscribers: list[SubscriberRecord] = []
        try:
            for done, record in enumerate(records, start=1):
                self.report.items += 1
                # A batch that was all done before (a resumed run) is not a step of its own.
                if isinstance(record, PostRecord):
                    posts.append(record)
                    if len(posts) >= self.batch:
                        started = self._start(posts, done)
                        posts = []
                        if self._finish():
                            yield self.written
                        self.pending = started
                elif isinstance(record, SubscriberRecord):
                    subscribers.append(record)
                    if len(subscribers) >= BATCH:
                        if self._subscribers(subscribers):
                            yield done
                        subscribers = []
                else:
                    # Written in the file's order: a late image or a redirect names a post.
                    self._finish()
                    if posts:
                        self.pending = self._start(posts, done - 1)
                        self._finish()
                        posts = []
                    self._one(record)
            self._finish()
            if posts:
                self.pending = self._start(posts, self.report.items)
                self._finish()
            if subscribers:
                self._subscribers(subscribers)
        finally:
            self.pending = None
            self.preparer.close()
        self.session.flush()  # the rest is committed with the job's end (``run_import``)

    def _one(self, record: Record) -> None:
        if isinstance(record, Source):
            self.source = record.name[:300]
        elif isinstance(record, AuthorRecord):
            self._author(record)
        elif isinstance(record, TagRecord):
            self._tag(record)
        elif isinstance(record, LateImage):
            self._late_image(record)
        elif isinstance(record, RedirectRecord):
            self._redirect(record)
        elif isinstance(record, SettingsRecord):
            self._settings(record)
        elif isinstance(record, Skipped):
            self.report.skip(record.kind, record.key, record.reason)

    # Authors and tags -----------------------------------------------------------------------

    def _author(self, record: AuthorRecord) -> None:
        known = self._known("author", [record.key])
        if record.key in known and known[record.key] is not None:
            self.users[record.key] = int(known[record.key] or 0)
            self.report.count(self.report.already_imported, "authors")
            return
        email = normalise_email(record.email)
        if not is_email_address(email):
            self.report.skip("author", record.key, f"no usable email ({record.email!r}); their "
                             "posts go to the site's owner")  # fmt: skip
            return
        user = self.session.scalar(select(User).where(User.email == email))
        if user is not None:
            self.report.count(self.report.matched, "authors")
        else:
            role = record.role if record.role in {r.value for r in Role} - {"owner"} else "author"
            try:
                # Invited: no password until they set one through "forgot password".
                user = create_user(self.session, email=email, role=role, now=self.now,
                                   name=record.name[:120] or None, bio=record.bio,
                                   actor=self.actor)  # fmt: skip
            except DomainError as error:
                self.report.skip("author", record.key, error.message)
                return
            self.report.count(self.report.created, "authors")
        self.users[record.key] = user.id
        self._remember("author", record.key, user.id)

    def _tag(self, record: TagRecord) -> None:
        tag_id = self._known("tag", [record.key]).get(record.key)
        found = self.session.get(Tag, tag_id) if tag_id is not None else None
        if found is not None:
            self.tags[record.key] = (found.id, found.name)
            self.report.count(self.report.already_imported, "tags")
            return
        existed = self.session.scalar(select(Tag.id).where(Tag.slug == make_slug(record.name)))
        try:
            (tag,) = find_or_create_tags(self.session, [record.name], now=self.now)
        except DomainError as error:
            self.report.skip("tag", record.key, error.message)
            return
        self.tags[record.key] = (tag.id, tag.name)
        if existed is None:
            self.report.count(self.report.created, "tags")
            tag.description = record.description[:MAX_DESCRIPTION]
        else:
            self.report.count(self.report.matched, "tags")
        for old in record.old_paths:
            if point_at_path(self.session, old, f"/tag/{tag.slug}/", source=RedirectSource.IMPORT,
                             now=self.now):  # fmt: skip
                self.report.redirects += 1
        self._remember("tag", record.key, tag.id)

    def _author_ids(self, record: PostRecord) -> list[int]:
        ids = [self.users[key] for key in record.authors if key in self.users]
        if ids:
            return list(dict.fromkeys(ids))
        if self.fallback_author is None:
            owner = self.session.scalar(
                select(User.id).where(User.role == Role.OWNER).order_by(User.id).limit(1)
            ) or self.session.scalar(select(User.id).order_by(User.id).limit(1))
            if owner is None:
                raise DomainError("the site has no staff account to give the posts to")
            self.fallback_author = owner
        return [self.fallback_author]

    # Posts ----------------------------------------------------------------------------------

    def _slugs(self, batch: list[PostRecord]) -> list[str]:
        """A free slug for each post of the batch (a clash gets -2, -3…, and is reported)."""
        wanted = []
        for record in batch:
            slug = make_slug(record.slug or record.title, max_length=190)
            if check_slug(slug) is not None:
                slug = make_slug(f"{record.kind}-{slug}", max_length=190)
            wanted.append(slug)
        taken = set(RESERVED_SLUGS) | set(
            self.session.scalars(select(Post.slug).where(Post.slug.in_(set(wanted))))
        )
        given = []
        for slug in wanted:
            free = slug
            if free in taken:
                taken |= set(
                    self.session.scalars(select(Post.slug).where(Post.slug.startswith(slug)))
                )
                number = 2
                while f"{slug}-{number}" in taken:
                    number += 1
                free = f"{slug}-{number}"
                self.report.clash("post", slug, free)
            taken.add(free)
            given.append(free)
        return given

    def _planned_for_values(self) -> None:
        """Have PostgreSQL plan this transaction's lookups for the values they ask about.

        psycopg prepares a statement run five times, and PostgreSQL may then keep one
        generic plan for it: made while an import's tables were small, that plan scans
        them whole, and each batch's lookups (slugs, import items, redirects) took longer
        than the one before (at 20,000 posts, ten times the rest of the database's work).
        """
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.connection().execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))

    def _start(self, batch: list[PostRecord], last: int) -> _Batch | None:
        """The batch's posts not imported before, their bodies on their way to Markdown and
        HTML; None when every one was.  ``last``: the number of the batch's last record."""
        self._planned_for_values()
        known = self._known("post", [r.key for r in batch])
        if self.pending is not None:  # the batch before, not written yet
            known.update(dict.fromkeys(r.key for r in self.pending.records))
        fresh: dict[str, PostRecord] = {}
        for record in batch:
            if record.key in known or record.key in fresh:
                self.report.count(self.report.already_imported, record.kind + "s")
            else:
                fresh[record.key] = record
        if not fresh:
            return None
        records = list(fresh.values())
        bodies = [r.to_markdown if r.to_markdown is not None else r.markdown for r in records]
        if self.fetching is None:
            return _Batch(records, self.preparer.submit(prepare.convert_and_render, bodies), last)
        # Images are fetched by this process between converting and rendering.
        return _Batch(records, self.preparer.submit(prepare.to_markdown, bodies), last,
                      fetching=True)  # fmt: skip

    def _finish(self) -> int:
        """Write the batch on its way, if any; how many posts it wrote."""
        if self.pending is None:
            return 0
        batch, self.pending = self.pending, None
        tried = self.downloads
        if batch.fetching:
            markdowns = [images.rewrite_body(md, self._image) for md in batch.prepared.result()]
            prepared = self.preparer.map(prepare.render, markdowns)
        else:
            prepared = batch.prepared.result()
        written = self._posts(batch.records, prepared)
        self.written = batch.last
        if self.fetching is not None:
            self.batch = BATCH_FETCHING if self.downloads > tried else BATCH
        return written

    def _posts(self, records: list[PostRecord], bodies: list[prepare.Prepared]) -> int:
        """Write the posts (none imported before), a statement per table for the batch."""
        self._planned_for_values()
        slugs = self._slugs(records)
        rows = [self._post(r, slug, body) for r, slug, body in zip(records, slugs, bodies,
                                                                    strict=True)]  # fmt: skip
        with indexed_together(self.session) as indexed:
            ids = insert_returning_ids(self.session, Post.__table__, rows)  # type: ignore[arg-type]
            indexed += ids
            tag_rows: list[dict[str, Any]] = []
            author_rows: list[dict[str, Any]] = []
            revisions: list[dict[str, Any]] = []
            for record, row, post_id in zip(records, rows, ids, strict=True):
                listed = listing_date(row["kind"], row["status"], row["published_at"])
                names = self._tag_links(record, post_id, listed, tag_rows)
                author_rows += [
                    {"post_id": post_id, "user_id": user_id, "position": position,
                     "published_at": listed}
                    for position, user_id in enumerate(self._author_ids(record))
                ]  # fmt: skip
                revisions.append(revision_row(post_id, 1, row, names, author_id=None,
                                              now=self.now, note="imported"))  # fmt: skip
            bulk_insert(self.session, PostTag.__table__, tag_rows)  # type: ignore[arg-type]
            bulk_insert(self.session, PostAuthor.__table__, author_rows)  # type: ignore[arg-type]
        bulk_insert(self.session, PostRevision.__table__, revisions)  # type: ignore[arg-type]
        mark_changed(self.session)  # rows the ORM did not see: readers' pages change
        usage = {
            i: (row["markdown"], row["feature_image"]) for i, row in zip(ids, rows, strict=True)
        }
        record_usage_of(self.session, usage, new=True)
        self._remember_many("post", [(r.key, i) for r, i in zip(records, ids, strict=True)])
        redirects = [
            (old, post_id)
            for record, row, post_id in zip(records, rows, ids, strict=True)
            for old in record.old_paths
            if old.rstrip("/") != f"/{row['slug']}"
        ]
        self.report.redirects += point_many_at_posts(
            self.session, redirects, source=RedirectSource.IMPORT, now=self.now
        )
        for record in records:
            self.report.count(self.report.created, record.kind + "s")
        self.session.flush()
        return len(records)

    def _tag_links(
        self, record: PostRecord, post_id: int, listed: datetime | None, rows: list[dict[str, Any]]
    ) -> list[str]:
        """Add the post's tag links to ``rows``; the names of its tags, in order."""
        names: list[str] = []
        for position, key in enumerate(k for k in dict.fromkeys(record.tags) if k in self.tags):
            tag_id, name = self.tags[key]
            if name in names:
                continue
            rows.append({"post_id": post_id, "tag_id": tag_id, "position": position,
                         "published_at": listed})  # fmt: skip
            names.append(name)
        return names

    def _post(self, record: PostRecord, slug: str, body: prepare.Prepared) -> dict[str, Any]:
        """The post's row, from its record and its body, converted and rendered."""
        status = _status(record.status, record.published_at, self.now)
        published = record.published_at if status is not PostStatus.DRAFT else None
        if status is PostStatus.PUBLISHED and published is None:
            published = self.now
        excerpt = (record.excerpt or "").strip() or None
        if record.canonical_url:
            self.report.canonical_skipped += 1
        image = self._feature_image(record.feature_image) if record.feature_image else None
        return {
            "kind": PostKind.PAGE if record.kind == "page" else PostKind.POST,
            "title": " ".join(record.title.split())[:300] or "(untitled)",
            "slug": slug,
            "markdown": body.markdown,
            "html": body.html,
            "custom_excerpt": excerpt,
            "excerpt": shorten(excerpt) if excerpt else body.excerpt,
            "status": status,
            "published_at": published,
            "created_at": record.created_at or published or self.now,
            "updated_at": record.updated_at or record.created_at or published or self.now,
            "featured": record.featured,
            "feature_image": image[:500] if image else None,
            "meta_title": (record.meta_title or None) and record.meta_title[:300],
            "meta_description": (record.meta_description or None) and record.meta_description[:500],
            "email_on_publish": False,
            "deleted_at": None,
            "version": 1,
        }

    def _late_image(self, record: LateImage) -> None:
        known = self._known("post", [record.post_key])
        post_id = known.get(record.post_key)
        if post_id is None or self.session.scalar(
            select(Post.feature_image).where(Post.id == post_id)
        ):
            return  # not imported, or given its image by an earlier run
        url = self._feature_image(record.url)
        self.session.execute(
            update(Post)
            .where(Post.id == post_id, Post.feature_image.is_(None))
            .values(feature_image=url[:500])
            .execution_options(synchronize_session=False)
        )

    # Images ---------------------------------------------------------------------------------

    def _feature_image(self, url: str) -> str:
        if self.fetching is None:
            return images.keep(url, self.report)
        return self._image(url)

    def _image(self, url: str) -> str:
        """The address a post gives the image at ``url``: in the media library once fetched
        (each source address once, even across imports), else ``url``, listed with why."""
        if ADDRESS.match(url) or url.startswith("data:") or self.fetching is None:
            return url  # ours (an archive's), inline data, or not fetching: left as it is
        if url in self.fetched:
            return self.fetched[url]
        source = images.where_from(url, self.fetching.old_site)
        if source is None:
            reason = ("a path on the old site, whose address the import was not given"
                      if url.lstrip().startswith(("/", "__GHOST_URL__"))
                      else "not an http or https address")  # fmt: skip
            self.fetched[url] = images.keep(url, self.report, reason)
            return url
        key = images.item_key(source)
        image_id = self._known("image", [key], source=IMAGES).get(key)
        image = self.session.get(Image, image_id) if image_id is not None else None
        host = urlsplit(source).netloc
        if image is not None:
            self.report.count(self.report.already_imported, "images")
        elif host in self.down:
            reason = f"unreachable: {host} did not answer for an earlier image"
            self.fetched[url] = images.keep(url, self.report, reason)
            return url
        else:
            self.downloads += 1
            try:
                data, name = images.download(source, self.fetching)
                image = upload_image(self.session, data, name=name, actor=self.actor,
                                     now=self.now, store=self.fetching.store,
                                     limits=self.fetching.limits)  # fmt: skip
            except images.FetchFailed as failed:
                if failed.unreachable:
                    self.down.add(host)
                self.fetched[url] = images.keep(url, self.report, str(failed))
                return url
            except Invalid as refused:
                reason = "refused by the media library: " + refused.fields.get("file", str(refused))
                self.fetched[url] = images.keep(url, self.report, reason)
                return url
            if image_id is None:
                self._remember("image", key, image.id, source=IMAGES)
            else:  # the image fetched before was deleted since: this one takes its place
                self.session.execute(
                    update(ImportItem)
                    .where(ImportItem.source == IMAGES, ImportItem.kind == "image",
                           ImportItem.source_id == key)
                    .values(target_id=image.id)
                    .execution_options(synchronize_session=False)
                )  # fmt: skip
            self.report.images_fetched += 1
        self.fetched[url] = image_address(image)
        return self.fetched[url]

    def _redirect(self, record: RedirectRecord) -> None:
        if record.post_key is not None:
            post_id = self._known("post", [record.post_key]).get(record.post_key)
            if post_id is not None:
                point_at_post(self.session, record.old_path, post_id, source=RedirectSource.IMPORT,
                              now=self.now)  # fmt: skip
                self.report.redirects += 1
        elif record.target and point_at_path(
            self.session, record.old_path, record.target, source=RedirectSource.IMPORT, now=self.now
        ):
            self.report.redirects += 1

    def _settings(self, record: SettingsRecord) -> None:
        current = site_settings(self.session)
        names = ("title", "description", "timezone", "posts_per_page")
        values = {**{name: getattr(current, name) for name in names}, **record.values}
        try:
            update_site_settings(self.session, actor=self.actor, now=self.now,
                                 title=str(values["title"]),
                                 description=str(values["description"]),
                                 timezone=str(values["timezone"]),
                                 posts_per_page=int(values["posts_per_page"]))  # fmt: skip
        except (DomainError, ValueError) as error:
            self.report.skip("settings", "site", getattr(error, "message", str(error)))

    # Subscribers ----------------------------------------------------------------------------

    def _subscribers(self, batch: list[SubscriberRecord]) -> int:
        known = self._known("subscriber", [r.key for r in batch])
        fresh = {r.email: r for r in batch if r.key not in known}
        self.report.count(self.report.already_imported, "subscribers", len(batch) - len(fresh))
        here = set(
            self.session.scalars(select(Subscriber.email).where(Subscriber.email.in_(fresh)))
        )
        added: list[tuple[str, Subscriber]] = []
        for email, record in fresh.items():
            if record.name:
                self.report.names_skipped += 1
            if email in here:
                self.report.count(self.report.matched, "subscribers")
                self._remember("subscriber", record.key, None)
                continue
            status = SubscriberStatus(record.status)
            confirmed = status is SubscriberStatus.CONFIRMED
            subscriber = Subscriber(
                email=email,
                status=status,
                created_at=record.created_at,
                # The original consent date is kept: when they signed up there.
                confirmed_at=(record.confirmed_at or record.created_at) if confirmed else None,
                unsubscribed_at=(record.unsubscribed_at or self.now)
                if status is SubscriberStatus.UNSUBSCRIBED
                else None,
                source=record.source[:20],
                consent=record.consent,
            )
            self.session.add(subscriber)
            added.append((record.key, subscriber))
        self.session.flush()
        for key, subscriber in added:
            self._remember("subscriber", key, subscriber.id)
        self.report.count(self.report.created, "subscribers", len(added))
        self.session.flush()
        return len(fresh)
