"""Reviewing a post's email before it goes, confirming it, and saying who a send left out.

The admin shows a writer who will get a post (counted by
``sending.count_recipients``, the rule the send itself uses) before anything
is mailed; only ``confirm_publish`` publishes or schedules.  After a send,
``left_out`` explains, from the database, why some subscribers got nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, or_, select

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostKind, PostStatus, PostTag
from broadsheet.errors import Conflict, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.newsletter import sending
from broadsheet.newsletter.models import (
    Delivery,
    DeliveryStatus,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTag,
)


@dataclass(frozen=True)
class Review:
    """What confirming would do: mail ``recipients`` subscribers a message titled ``subject``."""

    post_id: int
    version: int
    subject: str
    recipients: int
    tag_names: list[str]
    at: datetime | None  # None: now; otherwise when the scheduler will publish and mail it

    @property
    def who(self) -> str:
        """The rule in words: "subscribers to every post, or those following Python or Flask"."""
        everyone = "subscribers who follow every post"
        if not self.tag_names:
            return everyone
        return f"{everyone}, or those following {' or '.join(self.tag_names)}"


def _publishable(session: DbSession, post_id: int, *, actor: Actor) -> Post:
    post = content.load_post(session, post_id)
    require(actor, Action.PUBLISH_POST, post)
    if post.kind is not PostKind.POST:
        raise Invalid({"action": "only posts are emailed; publish a page without email"})
    if sending.send_for_post(session, post_id) is not None:
        raise Conflict("this post has already been emailed; it is never emailed twice")
    return post


def review_publish(
    session: DbSession, post_id: int, *, actor: Actor, now: datetime, at: datetime | None = None
) -> Review:
    """Who would get ``post_id`` if it were published with email now (or scheduled for ``at``).

    Reads only.  Raises NotFound, Forbidden for an actor who may not publish
    the post, Conflict for a post already emailed, Invalid for a time not in
    the future or a post already public.
    """
    post = _publishable(session, post_id, actor=actor)
    if at is not None and at <= now:
        raise Invalid({"publish_at": "must be in the future"})
    if post.status is PostStatus.PUBLISHED and post.is_visible(now):
        raise Invalid({"action": "the post is already public; it can no longer be emailed"})
    return Review(
        post_id=post.id,
        version=post.version,
        subject=post.title,
        recipients=sending.count_recipients(session, post.id, now=now),
        tag_names=[tag.name for tag in post.tags],
        at=at,
    )


def confirm_publish(
    session: DbSession,
    post_id: int,
    *,
    actor: Actor,
    now: datetime,
    expected_version: int,
    at: datetime | None = None,
) -> tuple[Post, Send | None]:
    """Publish ``post_id`` with email now, or schedule it for ``at`` with email; flushes only.

    Refuses (Conflict, nothing written) when the post changed since the
    reviewed ``expected_version``.  Returns the post and, when it went now, its send.
    """
    post = _publishable(session, post_id, actor=actor)
    content.check_version(
        post, expected_version,
        refused="Nothing was published or sent: reload the post and review it again.",
    )  # fmt: skip
    if at is None:
        return post, sending.publish_with_email(session, post, actor=actor, now=now)
    sending.schedule_with_email(session, post, actor=actor, at=at, now=now, email=True)
    return post, None


@dataclass(frozen=True)
class LeftOut:
    """Subscribers a send did not mail, by reason."""

    other_tags: int  # confirmed at the publish, following only tags the post does not have
    unconfirmed: int  # signed up by the publish but never confirmed their address
    unsubscribed: int  # listed, then unsubscribed before their copy went (skipped)
    cancelled: int  # listed, then the send was cancelled before their copy went

    def lines(self) -> list[str]:
        def people(number: int, one: str, many: str) -> str:
            return f"{number:,} {one if number == 1 else many}"

        said = []
        if self.other_tags:
            said.append(
                people(
                    self.other_tags, "confirmed subscriber follows", "confirmed subscribers follow"
                )
                + " only other tags"
            )
        if self.unconfirmed:
            said.append(
                people(self.unconfirmed, "subscriber had", "subscribers had")
                + " not confirmed their address"
            )
        if self.unsubscribed:
            said.append(
                people(self.unsubscribed, "subscriber", "subscribers")
                + " unsubscribed after the publish and "
                + ("was" if self.unsubscribed == 1 else "were")
                + " skipped"
            )
        if self.cancelled:
            said.append(
                people(self.cancelled, "subscriber was", "subscribers were")
                + " not mailed because the send was cancelled"
            )
        return said


def left_out(session: DbSession, send_id: int, *, actor: Actor) -> LeftOut:
    """Why the send ``send_id`` mailed fewer than all its subscribers, for whoever may read it.

    Raises NotFound for no such send, Forbidden as ``sending.send_progress``.
    """
    send = session.get(Send, send_id)
    if send is None:
        raise NotFound(f"there is no send {send_id}")
    require(actor, sending.READ_SEND, content.load_post(session, send.post_id))
    at, last = send.created_at, send.last_subscriber_id or 0
    chose_tags = exists().where(SubscriberTag.subscriber_id == Subscriber.id)
    chose_this_post = exists().where(
        SubscriberTag.subscriber_id == Subscriber.id,
        SubscriberTag.tag_id == PostTag.tag_id,
        PostTag.post_id == send.post_id,
    )
    still_there = or_(
        Subscriber.status == SubscriberStatus.CONFIRMED,
        and_(Subscriber.status == SubscriberStatus.UNSUBSCRIBED, Subscriber.unsubscribed_at > at),
    )
    count = select(func.count()).select_from(Subscriber).where(Subscriber.id <= last)
    other_tags = session.scalar(
        count.where(Subscriber.confirmed_at <= at, still_there, chose_tags, ~chose_this_post)
    )
    unconfirmed = session.scalar(
        count.where(
            Subscriber.created_at <= at,
            or_(Subscriber.confirmed_at.is_(None), Subscriber.confirmed_at > at),
            or_(Subscriber.unsubscribed_at.is_(None), Subscriber.unsubscribed_at > at),
        )
    )
    skipped = (
        select(func.count())
        .select_from(Delivery)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.send_id == send.id, Delivery.status == DeliveryStatus.SKIPPED)
    )
    unsubscribed = session.scalar(skipped.where(Subscriber.status == SubscriberStatus.UNSUBSCRIBED))
    cancelled = 0
    if send.status is SendStatus.CANCELLED:
        cancelled = (
            session.scalar(skipped.where(Subscriber.status != SubscriberStatus.UNSUBSCRIBED)) or 0
        )
    return LeftOut(
        other_tags=other_tags or 0,
        unconfirmed=unconfirmed or 0,
        unsubscribed=unsubscribed or 0,
        cancelled=cancelled,
    )


def publish_now(
    session: DbSession, post: Post, *, actor: Actor, now: datetime, email: bool
) -> int | None:
    """Publish ``post`` now, with ``email`` mailing its subscribers, for a caller who has
    decided (the Admin API); flushes only.  Returns how many this call mails (0 when the
    post was emailed before), or None without ``email``."""
    if not email:
        content.publish_post(session, post, actor=actor, now=now)
        return None
    send = sending.publish_with_email(session, post, actor=actor, now=now)
    return send.recipients if send is not None else 0


def schedule(
    session: DbSession, post: Post, *, actor: Actor, at: datetime, now: datetime, email: bool
) -> int | None:
    """Schedule ``post`` for ``at``, with ``email`` mailed when it goes out; flushes only.
    Returns how many it would mail if it went now (the same rule), or None without ``email``."""
    sending.schedule_with_email(session, post, actor=actor, at=at, now=now, email=email)
    if not email or sending.send_for_post(session, post.id) is not None:
        return None if not email else 0
    return sending.count_recipients(session, post.id, now=now)
