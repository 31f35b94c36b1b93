"""Publishing with email: freezing the recipients, listing them, cancelling, reading progress.

The recipients are frozen inside the transaction that publishes the post:
the subscribers confirmed at that moment (and already subscribers: ids up
to the largest one then) who chose no tags or one of the post's.  The send
records that moment and that id, and counts them.  Their delivery rows are
written in steps of ``NEWSLETTER_LIST_CHUNK`` subscribers: the first step in
the publishing transaction itself (so a list of a few thousand behaves as
if written at once), each further one by a worker task after the commit,
which queues that step's batches as it goes.  Writing 100,000 rows and
checking their keys takes seconds; a publish request must not.

A step writes rows with INSERT…SELECT … ON CONFLICT DO NOTHING over the
(send, subscriber) key and moves the send's ``listed_through`` on only from
the value it read, so two steps running at once write each row once; the
sweeper continues a listing whose chain of tasks broke (the broker was down
at publish time).  A reader who unsubscribes after the publish still gets a
row, marked skipped when its batch comes; one confirmed after it gets none.
The work is handed to the queue only after the publishing transaction
commits.  A post has at most one send, so publishing it twice, or two
schedulers overlapping, mails each subscriber once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Insert, and_, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from broadsheet.accounts.permissions import Action, Actor, can, require
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


def _insert_deliveries_once(session: DbSession) -> Insert:
    """An INSERT into deliveries that skips a subscriber the send already has a row for."""
    key = [Delivery.send_id, Delivery.subscriber_id]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(Delivery).on_conflict_do_nothing(index_elements=key)
    return sqlite.insert(Delivery).on_conflict_do_nothing(index_elements=key)


LIST_CHUNK = 5000  # subscribers whose rows one step writes, outside an app (NEWSLETTER_LIST_CHUNK)


def _list_chunk() -> int:
    if not has_app_context():
        return LIST_CHUNK
    return int(current_app.config.get("NEWSLETTER_LIST_CHUNK", LIST_CHUNK))


def _recipients(post_id: int, *, at: datetime, last_subscriber_id: int) -> list[Any]:
    """Who was to get ``post_id`` when it was published ``at``: conditions on Subscriber.

    Confirmed then (and not unsubscribed by then; one who left since still
    counts, and is skipped when the batch comes), a subscriber by then, and
    wanting every post or one of this post's tags.
    """
    chose_tags = exists().where(SubscriberTag.subscriber_id == Subscriber.id)
    chose_this_post = exists().where(
        SubscriberTag.subscriber_id == Subscriber.id,
        SubscriberTag.tag_id == PostTag.tag_id,
        PostTag.post_id == post_id,
    )
    return [
        Subscriber.id <= last_subscriber_id,
        Subscriber.confirmed_at <= at,
        or_(
            Subscriber.status == SubscriberStatus.CONFIRMED,
            and_(
                Subscriber.status == SubscriberStatus.UNSUBSCRIBED,
                Subscriber.unsubscribed_at > at,
            ),
        ),
        or_(~chose_tags, chose_this_post),
    ]


def count_recipients(
    session: DbSession, post_id: int, *, now: datetime, last_subscriber_id: int | None = None
) -> int:
    """How many subscribers a send of ``post_id`` frozen ``now`` lists: the one rule for the
    count a writer reviews and the rows the send writes."""
    if last_subscriber_id is None:
        last_subscriber_id = session.scalar(select(func.coalesce(func.max(Subscriber.id), 0)))
    wanted = _recipients(post_id, at=now, last_subscriber_id=last_subscriber_id or 0)
    return session.scalar(select(func.count()).select_from(Subscriber).where(*wanted)) or 0


def freeze_recipients(session: DbSession, post_id: int, *, now: datetime) -> Send | None:
    """Create the post's send, count its recipients and write the first step of their rows;
    flushes only.

    Call it in the transaction that publishes the post.  Returns None, and
    creates nothing, when the post already has a send or is not a published
    post.  The send (and the rest of the listing) is enqueued after commit.
    """

    post = session.get(Post, post_id)
    if post is None or post.kind is not PostKind.POST or post.status is not PostStatus.PUBLISHED:
        return None
    last_subscriber_id = session.scalar(select(func.coalesce(func.max(Subscriber.id), 0))) or 0
    send_id = session.scalar(
        _insert_send_once(session)
        .values(
            post_id=post_id,
            status=SendStatus.SENDING,
            recipients=0,
            created_at=now,
            enqueued_at=now,
            error_streak=0,
            listed_through=0,
            last_subscriber_id=last_subscriber_id,
        )
        .returning(Send.id)
    )
    if send_id is None:
        return None
    count = count_recipients(session, post_id, now=now, last_subscriber_id=last_subscriber_id)
    session.execute(update(Send).where(Send.id == send_id).values(recipients=count))
    list_step(session, send_id, now=now)
    send = session.get(Send, send_id, populate_existing=True)
    assert send is not None
    if count:
        enqueue_after_commit(session, "broadsheet.dispatch_send", send_id)
    else:
        send.status = SendStatus.DONE
        send.finished_at = now
        session.flush()
    return send


@dataclass(frozen=True)
class Step:
    """What one listing step wrote: the new delivery ids, and whether more remain."""

    delivery_ids: list[int]
    more: bool


def list_step(session: DbSession, send_id: int, *, now: datetime) -> Step:
    """Write the delivery rows of the next ``NEWSLETTER_LIST_CHUNK`` recipients; flushes only.

    Does nothing once the listing is complete or the send is no longer
    sending.  Safe to run twice at once: a row is written once, and only the
    step that moved ``listed_through`` on from where it found it says more
    remain.  The last step sets the send's recipients to the rows written.
    """
    row = session.execute(
        select(Send.post_id, Send.created_at, Send.listed_through, Send.last_subscriber_id).where(
            Send.id == send_id, Send.status == SendStatus.SENDING
        )
    ).one_or_none()
    if row is None or row.listed_through is None:
        return Step([], more=False)
    post_id, frozen_at, after, last = row
    wanted = [
        Subscriber.id > after,
        *_recipients(post_id, at=frozen_at, last_subscriber_id=last or 0),
    ]
    boundary = session.scalar(
        select(Subscriber.id)
        .where(*wanted)
        .order_by(Subscriber.id)
        .offset(_list_chunk() - 1)
        .limit(1)
    )
    if boundary is not None:
        wanted.append(Subscriber.id <= boundary)
    listed = literal(now, UTCDateTime())
    rows = select(
        literal(send_id),
        Subscriber.id,
        literal(DeliveryStatus.QUEUED.value),
        literal(0),
        listed,
        listed,
    ).where(*wanted)
    columns = ["send_id", "subscriber_id", "status", "attempts", "next_attempt_at", "updated_at"]
    written = session.scalars(
        _insert_deliveries_once(session).from_select(columns, rows).returning(Delivery.id)
    ).all()
    moved = session.execute(
        update(Send)
        .where(Send.id == send_id, Send.listed_through == after)
        .values(listed_through=boundary)
        .execution_options(synchronize_session=False)
    )
    if boundary is None and moved.rowcount:  # type: ignore[attr-defined]
        total = select(func.count()).select_from(Delivery).where(Delivery.send_id == send_id)
        session.execute(
            update(Send)
            .where(Send.id == send_id)
            .values(recipients=total.scalar_subquery())
            .execution_options(synchronize_session=False)
        )
    return Step(sorted(written), more=boundary is not None and bool(moved.rowcount))  # type: ignore[attr-defined]


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
    _freeze_wanted(session, published, now=now)
    # Posts due before the next run get a task timed for their moment (the sweep runs each
    # minute; two minutes ahead leaves a late run room).
    content.queue_upcoming_posts(session, now=now, within=UPCOMING)
    return published


UPCOMING = timedelta(minutes=2)


def _freeze_wanted(session: DbSession, published: list[int], *, now: datetime) -> None:
    if published:
        wanting = session.scalars(
            select(Post.id).where(Post.id.in_(published), Post.email_on_publish)
        )
        for post_id in list(wanting):
            freeze_recipients(session, post_id, now=now)


def publish_scheduled_post(
    session: DbSession, post_id: int, *, at: datetime, now: datetime
) -> bool:
    """The timed task's publish: post ``post_id`` goes out if still scheduled for ``at``,
    with its email if the writer asked for one; False (a no-op) otherwise."""
    published = content.publish_scheduled_post(session, post_id, at=at, now=now)
    _freeze_wanted(session, [post_id] if published else [], now=now)
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
    send.listed_through = None  # nobody not yet listed will be
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


def _measure(session: DbSession, send: Send) -> Progress:
    """How far ``send`` has got: one grouped count over an index, whatever its size."""
    counts = dict.fromkeys(DeliveryStatus, 0)
    for status, number in session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.send_id == send.id)
        .group_by(Delivery.status)
    ):
        counts[status] = number
    # Recipients whose rows are not written yet are still to go, while the send goes on.
    unlisted = 0
    if send.listed_through is not None and send.status is SendStatus.SENDING:
        unlisted = max(0, send.recipients - sum(counts.values()))
    return Progress(
        send_id=send.id,
        post_id=send.post_id,
        status=send.status,
        recipients=send.recipients,
        sent=counts[DeliveryStatus.SENT],
        failed=counts[DeliveryStatus.FAILED],
        skipped=counts[DeliveryStatus.SKIPPED],
        remaining=counts[DeliveryStatus.QUEUED] + counts[DeliveryStatus.SENDING] + unlisted,
        created_at=send.created_at,
        finished_at=send.finished_at,
        stop_reason=send.stop_reason,
    )


def send_for_post(session: DbSession, post_id: int) -> Send | None:
    """The post's send, or None; for tests and the CLI (doors read progress through below)."""
    return session.scalar(select(Send).where(Send.post_id == post_id))


# Who may read a send's progress: whoever may edit its post (the one rule for every door).
READ_SEND = Action.EDIT_POST


def send_progress(session: DbSession, send_id: int, *, actor: Actor) -> Progress:
    """How far the send ``send_id`` has got, for someone who may edit its post.

    Raises NotFound for no such send, Forbidden for an actor who may not edit the post.
    """
    send = session.get(Send, send_id)
    if send is None:
        raise NotFound(f"there is no send {send_id}")
    require(actor, READ_SEND, content.load_post(session, send.post_id))
    return _measure(session, send)


def post_send_progress(session: DbSession, post_id: int, *, actor: Actor) -> Progress:
    """How far the newsletter of post ``post_id`` has got, for someone who may edit the post.

    Raises NotFound for no such post or a post never emailed, Forbidden as send_progress.
    """
    require(actor, READ_SEND, content.load_post(session, post_id))
    send = send_for_post(session, post_id)
    if send is None:
        raise NotFound("this post has not been emailed")
    return _measure(session, send)


def recent_sends(
    session: DbSession, *, actor: Actor, limit: int = 50
) -> list[tuple[Progress, str]]:
    """The newest sends whose post ``actor`` may edit, with progress and the post's title."""
    require(actor, Action.VIEW_ADMIN)
    rows = session.execute(
        select(Send, Post)
        .join(Post, Post.id == Send.post_id)
        .options(selectinload(Post.author_links))
        .order_by(Send.created_at.desc(), Send.id.desc())
        .limit(limit)
    ).all()
    return [
        (_measure(session, send), post.title) for send, post in rows if can(actor, READ_SEND, post)
    ]
