"""Subscribers, and the state of every newsletter send in the database.

A ``Send`` is one post going out by email (at most one per post, so the same
publish triggered twice makes one send).  Its recipients are frozen when the
post is published, as one ``Delivery`` row per subscriber: the queue only
says that work exists; these rows say what was done.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broadsheet.content.models import Tag
from broadsheet.extensions import Model, utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the reader to confirm
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"


class SendStatus(enum.StrEnum):
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"
    STOPPED = "stopped"  # too many errors in a row; see ``stop_reason``


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a worker, due at ``next_attempt_at``
    SENDING = "sending"  # claimed by a worker at ``claimed_at``
    SENT = "sent"
    FAILED = "failed"  # for good; ``last_error`` says why
    SKIPPED = "skipped"  # unsubscribed before it went, or the send was cancelled


class SubscriberTag(Model):
    __tablename__ = "subscriber_tags"
    __table_args__ = (Index("ix_subscriber_tags_tag", "tag_id", "subscriber_id"),)

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)

    tag: Mapped[Tag] = relationship(lazy="joined", innerjoin=True)


class Subscriber(Model):
    """A reader who asked for the newsletter: to every post, or to posts with chosen tags."""

    __tablename__ = "subscribers"
    __table_args__ = (Index("ix_subscribers_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so that one address is one subscriber.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    status: Mapped[SubscriberStatus] = mapped_column(
        _enum(SubscriberStatus), default=SubscriberStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(index=True)  # (the stats' growth)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(index=True)
    # Where the address came from and what the reader agreed to (the site, an import's note).
    source: Mapped[str] = mapped_column(String(20), default="site")
    consent: Mapped[str] = mapped_column(Text, default="")
    # The site page whose form the reader last asked from (a post's path, say), for the stats.
    signup_path: Mapped[str | None] = mapped_column(String(500))

    tag_links: Mapped[list[SubscriberTag]] = relationship(
        cascade="all, delete-orphan", lazy="raise"
    )

    @property
    def tags(self) -> list[Tag]:
        return sorted((link.tag for link in self.tag_links), key=lambda tag: tag.name.lower())

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.status}>"


class Send(Model):
    """One post going out by email; created in the transaction that publishes the post."""

    __tablename__ = "newsletter_sends"
    __table_args__ = (Index("ix_newsletter_sends_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), unique=True)
    status: Mapped[SendStatus] = mapped_column(_enum(SendStatus), default=SendStatus.SENDING)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When work for this send was last handed to the queue, and last taken from it: the
    # sweeper re-enqueues a send only when both are older than its stall limit.
    enqueued_at: Mapped[datetime | None]
    active_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    # The listing of recipients (see ``sending``): the largest subscriber id when the post was
    # published, and how far the delivery rows are written (None once they all are).
    last_subscriber_id: Mapped[int | None]
    listed_through: Mapped[int | None]
    # Errors since the last message the SMTP server accepted.
    error_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stop_reason: Mapped[str | None] = mapped_column(Text)

    def __repr__(self) -> str:
        return f"<Send {self.id} post={self.post_id} {self.status}>"


class Delivery(Model):
    """One subscriber's copy of one send, and everything that happened to it."""

    __tablename__ = "newsletter_deliveries"
    __table_args__ = (
        UniqueConstraint("send_id", "subscriber_id"),
        # Claims walk a send's rows by id; progress counts them by status.
        Index("ix_newsletter_deliveries_send", "send_id", "status", "id"),
        # The sweeper looks for rows due again, and for claims that went quiet.
        Index("ix_newsletter_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    send_id: Mapped[int] = mapped_column(ForeignKey("newsletter_sends.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    # "<task id>:<nonce>" of the worker holding the row while it is being sent.
    claim: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(250))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    subscriber: Mapped[Subscriber] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"<Delivery {self.id} send={self.send_id} {self.status}>"


class EmailOpen(Model):
    """The first time one delivery's tracking pixel was loaded (only with STATS_EMAIL_OPENS).

    One row per delivery at most: later loads change nothing.  No address, no
    user agent: the delivery and the time are all there is.
    """

    __tablename__ = "newsletter_opens"

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter_deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    opened_at: Mapped[datetime]


class EmailClick(Model):
    """One delivery's clicks on one link of its email (only with STATS_EMAIL_CLICKS)."""

    __tablename__ = "newsletter_clicks"
    __table_args__ = (UniqueConstraint("delivery_id", "link_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter_deliveries.id", ondelete="CASCADE")
    )
    link_key: Mapped[str] = mapped_column(String(32))  # a digest of url, for the unique key
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=1)  # every click, the first included
    first_at: Mapped[datetime]
