"""Publishing with email: freezing the recipients, cancelling, and reading progress.

The recipient list is frozen inside the transaction that publishes the post,
in one INSERT…SELECT; the work is handed to the queue only after that
transaction commits.  A post has at most one send, so publishing it twice,
or two schedulers overlapping, mails each subscriber once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert, exists, func, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content import services as content
from broadsheet.content.models import Post, PostKind, PostStatus, PostTag
from broadsheet.errors import Conflict, NotFound
from broadsheet.extensions import DbSession, UTCDateTime
from broadsheet.newsletter.models import (
    Delivery,
    DeliveryStatus,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTag,
)
from broadsheet.queue import enqueue_after_commit


def _insert_send_once(session: DbSession) -> Insert:
    """An INSERT into sends that does nothing when the post already has one."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(Send).on_conflict_do_nothing(index_elements=[Send.post_id])
    return sqlite.insert(Send).on_conflict_do_nothing(index_elements=[Send.post_id])


def freeze_recipients(session: DbSession, post_id: int, *, now: datetime) -> Send | None:
    """Create the post's send and one queued delivery per subscriber it is for; flushes only.

    Call it in the transaction that publishes the post.  The recipients are
    the subscribers confirmed at ``now`` who chose no tags or one of the
    post's tags.  Returns None, and creates nothing, when the post already has
    a send or is not a published post.  The send is enqueued after commit.
    """
    from broadsheet.newsletter.tasks import dispatch_send

    post = session.get(Post, post_id)
    if post is None or post.kind is not PostKind.POST or post.status is not PostStatus.PUBLISHED:
        return None
    send_id = session.scalar(
        _insert_send_once(session)
        .values(
            post_id=post_id,
            status=SendStatus.SENDING,
            recipients=0,
            created_at=now,
            enqueued_at=now,
            error_streak=0,
        )
        .returning(Send.id)
    )
    if send_id is None:
        return None
    chose_tags = exists().where(SubscriberTag.subscriber_id == Subscriber.id)
    chose_this_post = exists().where(
        SubscriberTag.subscriber_id == Subscriber.id,
        SubscriberTag.tag_id == PostTag.tag_id,
        PostTag.post_id == post_id,
    )
    moment = literal(now, UTCDateTime())
    recipients = (
        select(
            literal(send_id),
            Subscriber.id,
            literal(DeliveryStatus.QUEUED.value),
            literal(0),
            moment,
            moment,
        )
        .where(
            Subscriber.status == SubscriberStatus.CONFIRMED,
            Subscriber.confirmed_at <= now,
            or_(~chose_tags, chose_this_post),
        )
        .order_by(Subscriber.id)
    )
    session.execute(
        insert(Delivery).from_select(
            ["send_id", "subscriber_id", "status", "attempts", "next_attempt_at", "updated_at"],
            recipients,
        )
    )
    # Counted over the index (the driver's rowcount for INSERT…SELECT is not reliable).
    count = (
        session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.send_id == send_id)
        )
        or 0
    )
    session.execute(update(Send).where(Send.id == send_id).values(recipients=count))
    send = session.get(Send, send_id, populate_existing=True)
    assert send is not None
    if count:
        enqueue_after_commit(session, dispatch_send, send_id)
    else:
        send.status = SendStatus.DONE
        send.finished_at = now
        session.flush()
    return send


def publish_with_email(
    session: DbSession, post: Post, *, actor: Actor, now: datetime
) -> Send | None:
    """Publish ``post`` now and email it to its subscribers; flushes, never commits.

    Publishing again, or emailing a post that already went out, sends
    nothing more: the post keeps its one send.  Raises what publishing raises.
    """
    content.publish_post(session, post, actor=actor, now=now)
    post.email_on_publish = True
    session.flush()
    return freeze_recipients(session, post.id, now=now)


def schedule_with_email(
    session: DbSession, post: Post, *, actor: Actor, at: datetime, now: datetime, email: bool
) -> Post:
    """Schedule ``post`` for ``at``; with ``email`` the scheduler's publish mails it too."""
    content.schedule_post(session, post, actor=actor, at=at, now=now)
    post.email_on_publish = email
    session.flush()
    return post


def publish_due_posts(session: DbSession, *, now: datetime) -> list[int]:
    """Publish the scheduled posts whose time has come, freezing the email of those that want it.

    Each post is published once however many runs overlap (see
    ``content.services.publish_due_posts``), and has at most one send.
    """
    published = content.publish_due_posts(session, now=now)
    if published:
        wanting = session.scalars(
            select(Post.id).where(Post.id.in_(published), Post.email_on_publish)
        )
        for post_id in list(wanting):
            freeze_recipients(session, post_id, now=now)
    return published


def cancel_send(session: DbSession, send_id: int, *, actor: Actor, now: datetime) -> Send:
    """Stop a send that has not finished: nobody not yet mailed will be; flushes only.

    Messages a worker is handing to the SMTP server at this moment still go.
    Raises NotFound, Forbidden, or Conflict when the send is already over.
    """
    send = session.get(Send, send_id)
    if send is None:
        raise NotFound(f"there is no send {send_id}")
    post = content.load_post(session, send.post_id)
    require(actor, Action.PUBLISH_POST, post)
    if send.status is not SendStatus.SENDING:
        raise Conflict(f"this send is already {send.status.value}; there is nothing to cancel")
    send.status = SendStatus.CANCELLED
    send.cancelled_at = now
    send.finished_at = now
    session.execute(
        update(Delivery)
        .where(Delivery.send_id == send_id, Delivery.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.SKIPPED, last_error="the send was cancelled", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return send


@dataclass(frozen=True)
class Progress:
    send_id: int
    post_id: int
    status: SendStatus
    recipients: int
    sent: int
    failed: int
    skipped: int
    remaining: int
    created_at: datetime
    finished_at: datetime | None
    stop_reason: str | None

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def percent(self) -> int:
        return 100 if not self.recipients else min(100, self.done * 100 // self.recipients)


def send_progress(session: DbSession, send: Send) -> Progress:
    """How far ``send`` has got: one grouped count over an index, whatever its size."""
    counts = dict.fromkeys(DeliveryStatus, 0)
    for status, number in session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.send_id == send.id)
        .group_by(Delivery.status)
    ):
        counts[status] = number
    return Progress(
        send_id=send.id,
        post_id=send.post_id,
        status=send.status,
        recipients=send.recipients,
        sent=counts[DeliveryStatus.SENT],
        failed=counts[DeliveryStatus.FAILED],
        skipped=counts[DeliveryStatus.SKIPPED],
        remaining=counts[DeliveryStatus.QUEUED] + counts[DeliveryStatus.SENDING],
        created_at=send.created_at,
        finished_at=send.finished_at,
        stop_reason=send.stop_reason,
    )


def send_for_post(session: DbSession, post_id: int) -> Send | None:
    return session.scalar(select(Send).where(Send.post_id == post_id))


def recent_sends(session: DbSession, *, limit: int = 50) -> list[tuple[Progress, str]]:
    """The newest sends with their progress and their post's title, for staff."""
    rows = session.execute(
        select(Send, Post.title)
        .join(Post, Post.id == Send.post_id)
        .order_by(Send.created_at.desc(), Send.id.desc())
        .limit(limit)
    ).all()
    return [(send_progress(session, send), title) for send, title in rows]
