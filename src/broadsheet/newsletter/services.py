"""The reader's subscription: subscribing, confirming, unsubscribing, preferences.

Every door (the site, the API, the CLI) calls these; the staff's roster and
CSV import and export are in ``roster.py``.  They flush
and never commit; emails are queued on the session and go out after the
door commits.  Nothing here tells a caller whether an address was already
known: subscribing with a known address looks exactly like subscribing with
a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from broadsheet import addresses
from broadsheet.content.models import PostTag, Tag
from broadsheet.content.queries import Remember, compute
from broadsheet.errors import Invalid, NotFound
from broadsheet.extensions import DbSession, limiter
from broadsheet.newsletter.models import Subscriber, SubscriberStatus, SubscriberTag
from broadsheet.newsletter.tokens import Purpose, matches, read_token
from broadsheet.outbox.models import OutboxEmail
from broadsheet.outbox.services import queue_email

# How often one IP may ask to subscribe, through any door: one limit the site form and the API
# share.  It guards the server; the inbox is guarded by the per-address cooldown below, which
# lives in the database and so holds across processes and doors, whatever the limiter's store.
SUBSCRIBE_LIMIT = "5 per minute;30 per hour"
subscribe_rate_limit = limiter.shared_limit(SUBSCRIBE_LIMIT, scope="newsletter-subscribe")
# At most this many confirmation or "already subscribed" emails to one address per window.
NOTICES_PER_ADDRESS = 3
NOTICE_WINDOW = timedelta(hours=24)
SUBSCRIBER_EMAIL_TASK = "broadsheet.send_subscriber_email"

# How many tags the forms offer: a big site has too many for a page of checkboxes.
OFFERED_TAGS = 30


def normalise_email(raw: str) -> str:
    """The address as stored: trimmed and lower-cased.  Raises Invalid when it is not one."""
    email = addresses.normalise_email(raw)
    if not email:
        raise Invalid({"email": "enter your email address"})
    if not addresses.is_email_address(email):
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
    session: DbSession, *, email: str, tags: Sequence[str] = (), now: datetime, page: str = ""
) -> Subscriber:
    """Ask ``email`` to confirm a subscription to posts with ``tags`` (slugs; none = all).

    ``page`` is the site path whose form was used (kept for the stats: which
    posts readers subscribe from); anything but a site path is dropped.

    A new or unsubscribed address becomes pending and gets a confirmation
    email; a pending one gets it again with the tags now chosen; a confirmed
    one gets a note with a link to its preferences, and its tags stay as
    they are until the reader changes them there.  At most
    ``NOTICES_PER_ADDRESS`` of those emails go to one address in
    ``NOTICE_WINDOW``, whatever the door; past that the request changes the
    state as usual and mails nothing.  Whatever the case, the caller learns
    nothing it can show.  Raises Invalid for a bad address or
    an unknown tag.
    """

    address = normalise_email(email)
    chosen = _chosen_tags(session, tags)
    # Locked (on PostgreSQL) so that two requests at once count the cooldown one after another.
    subscriber = session.scalar(
        select(Subscriber)
        .where(Subscriber.email == address)
        .options(selectinload(Subscriber.tag_links))
        .with_for_update(of=Subscriber)
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
        subscriber.signup_path = _site_path(page)
        _set_tags(subscriber, chosen)
    session.flush()
    if _may_notify(session, subscriber, now=now):
        queue_email(session, task=SUBSCRIBER_EMAIL_TASK, kind=kind,
                    ref_id=subscriber.id, recipient=subscriber.email, now=now)  # fmt: skip
    return subscriber


def _site_path(page: str) -> str | None:
    """A path of this site (``/a-post/``), or None for anything else a form could be sent."""
    if not page.startswith("/") or page.startswith("//") or len(page) > 500:
        return None
    return page if all(ch.isprintable() and not ch.isspace() for ch in page) else None


def _may_notify(session: DbSession, subscriber: Subscriber, *, now: datetime) -> bool:
    """Whether one more subscribe email may go to the subscriber's address now.

    Counted in the outbox, which records every such email in the same
    transaction, so the limit holds across doors, IPs and processes (the
    caller holds the subscriber's row, so two requests count one by one).
    """
    recent = session.scalar(
        select(func.count())
        .select_from(OutboxEmail)
        .where(
            OutboxEmail.recipient == subscriber.email,
            OutboxEmail.task == SUBSCRIBER_EMAIL_TASK,
            OutboxEmail.created_at > now - NOTICE_WINDOW,
        )
    )
    return (recent or 0) < NOTICES_PER_ADDRESS


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


def find_subscriber(session: DbSession, email: str) -> Subscriber | None:
    """For staff and tests: the subscriber with this address, or None."""
    return session.scalar(
        select(Subscriber)
        .where(Subscriber.email == email.strip().lower())
        .options(selectinload(Subscriber.tag_links))
    )
