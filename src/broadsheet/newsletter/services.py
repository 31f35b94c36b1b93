"""Subscribing, confirming, unsubscribing, preferences, and staff's CSV import and export.

Every door (the site, the API, the admin, the CLI) calls these.  They flush
and never commit; emails are queued on the session and go out after the
door commits.  Nothing here tells a caller whether an address was already
known: subscribing with a known address looks exactly like subscribing with
a new one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content.models import PostTag, Tag
from broadsheet.content.queries import Remember, compute
from broadsheet.content.services import find_or_create_tags
from broadsheet.errors import Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.newsletter.models import Subscriber, SubscriberStatus, SubscriberTag
from broadsheet.newsletter.tokens import Purpose, matches, read_token
from broadsheet.outbox.services import queue_email, queue_emails

MAX_EMAIL = 254
# Deliberately loose: one @, something before it, a dotted domain after it, no spaces.
_email_shape = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
CSV_FIELDS = ("email", "status", "tags", "consent", "created_at", "confirmed_at")

# How often one address may ask to subscribe, through any door (the site or the API).
SUBSCRIBE_LIMIT = "5 per minute;30 per hour"

# How many tags the forms offer: a big site has too many for a page of checkboxes.
OFFERED_TAGS = 30


def normalise_email(raw: str) -> str:
    """The address as stored: trimmed and lower-cased.  Raises Invalid when it is not one."""
    email = raw.strip().lower()
    if not email:
        raise Invalid({"email": "enter your email address"})
    if len(email) > MAX_EMAIL or not _email_shape.match(email):
        raise Invalid({"email": f"{raw.strip()[:60]!r} does not look like an email address"})
    return email


@dataclass(frozen=True)
class TagOption:
    """One checkbox of the subscribe and preferences forms."""

    tag: Tag
    posts: int  # public posts with the tag
    chosen: bool


@dataclass(frozen=True)
class OfferedTags:
    options: list[TagOption]
    more: bool  # some public tags with posts are not offered


def offered_tags(
    session: DbSession,
    *,
    now: datetime,
    chosen: Iterable[str] = (),
    limit: int = OFFERED_TAGS,
    remember: Remember = compute,
) -> OfferedTags:
    """The tags a reader may tick: the ``limit`` most used, and every one already ``chosen``.

    Most used means most public posts; ties go by name.  ``chosen`` (slugs)
    are offered ticked even when they are outside the most used or have no
    post, so that nothing a reader chose disappears from the form; they come
    first when they are not among the most used.  Internal and unknown slugs
    in ``chosen`` are ignored.  Three queries at most, however many tags;
    the ranking, which counts every public tag link, is kept by ``remember``.
    """
    wanted = {slug.strip() for slug in chosen if slug.strip()}
    counted = (
        select(PostTag.tag_id, func.count().label("posts"))
        .where(PostTag.published_at <= now)
        .group_by(PostTag.tag_id)
        .subquery()
    )
    most_used = (
        select(Tag.id, counted.c.posts)
        .join(counted, counted.c.tag_id == Tag.id)
        .where(~Tag.is_internal)
        .order_by(counted.c.posts.desc(), Tag.name)
        .limit(limit + 1)
    )

    def rank() -> list[tuple[int, int]]:
        return [(int(row[0]), int(row[1])) for row in session.execute(most_used)]

    ranking = remember(f"offered-tags:{limit}", rank)
    ids = [tag_id for tag_id, _ in ranking[:limit]]
    found = {tag.id: tag for tag in session.scalars(select(Tag).where(Tag.id.in_(ids)))}
    top = [
        TagOption(found[tag_id], posts, found[tag_id].slug in wanted)
        for tag_id, posts in ranking[:limit]
        if tag_id in found
    ]
    if missing := wanted - {option.tag.slug for option in top}:
        public_posts = (
            select(func.count())
            .select_from(PostTag)
            .where(PostTag.tag_id == Tag.id, PostTag.published_at <= now)
            .correlate(Tag)
            .scalar_subquery()
        )
        others = (
            select(Tag, public_posts)
            .where(Tag.slug.in_(missing), ~Tag.is_internal)
            .order_by(Tag.name)
        )
        extra = session.execute(others).all()
        top = [TagOption(row[0], int(row[1]), True) for row in extra] + top
    return OfferedTags(top, more=len(ranking) > limit)


def _chosen_tags(session: DbSession, slugs: Sequence[str]) -> list[Tag]:
    wanted = list(dict.fromkeys(s.strip() for s in slugs if s.strip()))
    if not wanted:
        return []
    found = list(session.scalars(select(Tag).where(Tag.slug.in_(wanted), ~Tag.is_internal)))
    if unknown := set(wanted) - {tag.slug for tag in found}:
        raise Invalid({"tags": f"there is no tag {sorted(unknown)[0]!r}"})
    return found


def _set_tags(subscriber: Subscriber, tags: Iterable[Tag]) -> None:
    kept = {link.tag_id: link for link in subscriber.tag_links}
    subscriber.tag_links = [kept.get(tag.id) or SubscriberTag(tag=tag) for tag in tags]


def _load(session: DbSession, subscriber_id: int) -> Subscriber | None:
    return session.scalar(
        select(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .options(selectinload(Subscriber.tag_links))
    )


def subscribe(
    session: DbSession, *, email: str, tags: Sequence[str] = (), now: datetime
) -> Subscriber:
    """Ask ``email`` to confirm a subscription to posts with ``tags`` (slugs; none = all).

    A new or unsubscribed address becomes pending and gets a confirmation
    email; a pending one gets it again with the tags now chosen; a confirmed
    one gets a note with a link to its preferences, and its tags stay as
    they are until the reader changes them there.  Whatever the case, the
    caller learns nothing it can show.  Raises Invalid for a bad address or
    an unknown tag.
    """

    address = normalise_email(email)
    chosen = _chosen_tags(session, tags)
    subscriber = session.scalar(
        select(Subscriber)
        .where(Subscriber.email == address)
        .options(selectinload(Subscriber.tag_links))
    )
    if subscriber is None:
        subscriber = Subscriber(email=address, created_at=now, source="site", consent="")
        session.add(subscriber)
    if subscriber.status is SubscriberStatus.CONFIRMED:
        kind = "already"
    else:
        kind = "confirm"
        subscriber.status = SubscriberStatus.PENDING
        subscriber.consent = f"asked on the site at {now:%Y-%m-%d %H:%M} UTC"
        _set_tags(subscriber, chosen)
    session.flush()
    queue_email(session, task="broadsheet.send_subscriber_email", kind=kind,
                ref_id=subscriber.id, recipient=subscriber.email, now=now)  # fmt: skip
    return subscriber


def _by_token(session: DbSession, secret_key: str, purpose: Purpose, token: str) -> Subscriber:
    found = read_token(secret_key, purpose, token)
    subscriber = _load(session, found[0]) if found else None
    if found is None or subscriber is None or not matches(subscriber.email, found[1]):
        raise NotFound("this link is not valid (it may be incomplete, or too old)")
    return subscriber


def subscriber_for(
    session: DbSession, *, secret_key: str, purpose: Purpose, token: str
) -> Subscriber:
    """The subscriber a link names; raises NotFound for a forged, stale or outdated link."""
    return _by_token(session, secret_key, purpose, token)


def confirm(session: DbSession, *, secret_key: str, token: str, now: datetime) -> Subscriber:
    """Confirm the subscription a confirmation link names; confirming twice is harmless.

    A reader who unsubscribed since is not subscribed again by an old link.
    Raises NotFound for a forged or stale link.
    """
    subscriber = _by_token(session, secret_key, Purpose.CONFIRM, token)
    if subscriber.status is SubscriberStatus.PENDING:
        subscriber.status = SubscriberStatus.CONFIRMED
        subscriber.confirmed_at = now
        subscriber.unsubscribed_at = None
        session.flush()
    return subscriber


def unsubscribe(session: DbSession, *, secret_key: str, token: str, now: datetime) -> Subscriber:
    """Stop every email to the subscriber an unsubscribe link names; idempotent.

    Deliveries not yet sent to them are skipped by the workers.  Raises
    NotFound for a forged link (and changes nothing).
    """
    subscriber = _by_token(session, secret_key, Purpose.UNSUBSCRIBE, token)
    if subscriber.status is not SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = now
        session.flush()
    return subscriber


def update_preferences(
    session: DbSession, *, secret_key: str, token: str, tags: Sequence[str], now: datetime
) -> Subscriber:
    """Set the tags (slugs; none = every post) the preferences link's subscriber receives.

    Raises NotFound for a forged link, Invalid for an unknown tag.
    """
    subscriber = _by_token(session, secret_key, Purpose.PREFERENCES, token)
    _set_tags(subscriber, _chosen_tags(session, tags))
    session.flush()
    return subscriber


# Staff ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriberPage:
    subscribers: list[Subscriber]
    total: int
    number: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def list_subscribers(
    session: DbSession,
    *,
    actor: Actor,
    search: str = "",
    status: SubscriberStatus | None = None,
    number: int = 1,
    per_page: int = 50,
) -> SubscriberPage:
    """Subscribers newest first, filtered by address fragment and status, with their tags."""
    require(actor, Action.MANAGE_SUBSCRIBERS)
    query = select(Subscriber)
    if search.strip():
        query = query.where(Subscriber.email.contains(search.strip().lower(), autoescape=True))
    if status is not None:
        query = query.where(Subscriber.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    number = max(1, number)
    rows = session.scalars(
        query.order_by(Subscriber.created_at.desc(), Subscriber.id.desc())
        .options(selectinload(Subscriber.tag_links))
        .limit(per_page)
        .offset((number - 1) * per_page)
    )
    return SubscriberPage(list(rows), total, number, per_page)


@dataclass(frozen=True)
class _ImportRow:
    status: SubscriberStatus
    consent: str
    tags: list[str]
    created: datetime
    confirmed: datetime | None


@dataclass
class ImportReport:
    created: int = 0
    already_known: int = 0
    confirmations: int = 0
    emails: list[str] = field(default_factory=list)


def _parse_time(value: str, line: int, name: str, errors: dict[str, str]) -> datetime | None:
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        errors[f"line {line}"] = f"{name} {value!r} is not an ISO 8601 time"
        return None
    if moment.tzinfo is None:
        errors[f"line {line}"] = f"{name} {value!r} has no time zone"
        return None
    return moment


def import_subscribers(
    session: DbSession, *, actor: Actor, text: str, now: datetime
) -> ImportReport:
    """Add the subscribers of a CSV file (the export's columns); all rows or none.

    Columns: ``email`` and ``consent`` are required; ``status`` (pending,
    confirmed or unsubscribed; pending when empty), ``tags`` (names separated
    by ``;``), ``created_at`` and ``confirmed_at`` are optional.  A row marked
    confirmed must say what consent was given; every pending row gets a
    confirmation email after the commit.  Addresses already known are left as
    they are.  Raises Invalid naming every bad line, and writes nothing then.
    """

    require(actor, Action.MANAGE_SUBSCRIBERS)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {name.strip().lower() for name in reader.fieldnames or []}
    if missing := [name for name in ("email", "consent") if name not in columns]:
        raise Invalid({"file": f"the CSV file has no {' or '.join(missing)} column"})
    errors: dict[str, str] = {}
    rows: dict[str, _ImportRow] = {}
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "") for k, v in raw.items()}
        try:
            email = normalise_email(str(row.get("email", "")))
        except Invalid as error:
            errors[f"line {line}"] = error.fields["email"]
            continue
        status_word = str(row.get("status", "")).strip().lower() or "pending"
        if status_word not in SubscriberStatus.__members__.values():
            errors[f"line {line}"] = (
                f"status {status_word!r} is not pending, confirmed or unsubscribed"
            )
            continue
        status = SubscriberStatus(status_word)
        consent = str(row.get("consent", "")).strip()
        if status is SubscriberStatus.CONFIRMED and not consent:
            errors[f"line {line}"] = "a confirmed subscriber needs a consent note"
            continue
        created = _parse_time(str(row.get("created_at", "")), line, "created_at", errors)
        confirmed = _parse_time(str(row.get("confirmed_at", "")), line, "confirmed_at", errors)
        tags = [name for name in str(row.get("tags", "")).split(";") if name.strip()]
        rows.setdefault(email, _ImportRow(status, consent, tags, created or now, confirmed))
    if errors:
        raise Invalid(errors, f"{len(errors)} line(s) could not be imported; nothing was")
    known = set(session.scalars(select(Subscriber.email).where(Subscriber.email.in_(rows))))
    report = ImportReport(already_known=len(known))
    all_tags = {name for item in rows.values() for name in item.tags}
    tag_by_name = {
        tag.name.lower(): tag for tag in find_or_create_tags(session, sorted(all_tags), now=now)
    }
    pending: list[Subscriber] = []
    for email, item in rows.items():
        if email in known:
            continue
        status = item.status
        subscriber = Subscriber(
            email=email,
            status=status,
            created_at=item.created,
            confirmed_at=(item.confirmed or now) if status is SubscriberStatus.CONFIRMED else None,
            unsubscribed_at=now if status is SubscriberStatus.UNSUBSCRIBED else None,
            source="import",
            consent=item.consent,
        )
        subscriber.tag_links = [
            SubscriberTag(tag=tag_by_name[" ".join(n.split()).lower()]) for n in item.tags
        ]
        session.add(subscriber)
        report.emails.append(email)
        if status is SubscriberStatus.PENDING:
            pending.append(subscriber)
    session.flush()
    report.created = len(report.emails)
    report.confirmations = len(pending)
    queue_emails(session, task="broadsheet.send_subscriber_email", kind="confirm",
                 recipients=[(s.id, s.email) for s in pending], now=now)  # fmt: skip
    return report


def _time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def export_subscribers(session: DbSession, *, actor: Actor) -> Iterator[str]:
    """Every subscriber as CSV lines (header first), read in chunks, with tags and status.

    The file imports back as it is.
    """
    require(actor, Action.MANAGE_SUBSCRIBERS)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Sequence[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(CSV_FIELDS)
    rows = session.scalars(
        select(Subscriber)
        .order_by(Subscriber.id)
        .options(selectinload(Subscriber.tag_links))
        .execution_options(yield_per=500)
    )
    for subscriber in rows:
        yield line(
            [
                subscriber.email,
                subscriber.status.value,
                "; ".join(tag.name for tag in subscriber.tags),
                subscriber.consent,
                _time(subscriber.created_at),
                _time(subscriber.confirmed_at),
            ]
        )


def subscriber_counts(session: DbSession) -> dict[SubscriberStatus, int]:
    counts = dict.fromkeys(SubscriberStatus, 0)
    for status, number in session.execute(
        select(Subscriber.status, func.count()).group_by(Subscriber.status)
    ):
        counts[status] = number
    return counts


def find_subscriber(session: DbSession, email: str) -> Subscriber | None:
    """For staff and tests: the subscriber with this address, or None."""
    return session.scalar(
        select(Subscriber)
        .where(or_(Subscriber.email == email.strip().lower()))
        .options(selectinload(Subscriber.tag_links))
    )
