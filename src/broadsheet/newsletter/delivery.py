"""Sending one batch of a newsletter: claim its rows, hand each message over, mark it.

A batch claims its rows with one UPDATE … WHERE status = 'queued' …
RETURNING, so two workers never hold the same row; it then hands the
messages to the SMTP server one by one over one connection and commits each
row's new state right after the server answers.  A crash can therefore
leave at most one message accepted but not marked: the one in flight.  The
mark that follows each accepted message is one UPDATE on a database
connection the batch holds in autocommit mode: the statement is its own
transaction, committed when it returns, with no pool checkout, BEGIN or
COMMIT around it (those cost several times what the UPDATE itself does).

A claim is "<task id>:<nonce>".  A message the broker delivers again after
its worker died carries the same task id, and takes back the rows that its
earlier run claimed; the earlier run, should it still be alive, loses them at
its next mark and stops.  Claims that nobody finishes (the embedded broker
never redelivers a message whose worker was killed) are returned to the
queue by the sweeper (``sweeper.py``) once they are older than the lease.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import ColumnElement

from broadsheet.extensions import DbSession
from broadsheet.newsletter.emails import NewsletterComposer
from broadsheet.newsletter.mailers import Mailer, MailError
from broadsheet.newsletter.models import (
    Delivery,
    DeliveryStatus,
    Send,
    SendStatus,
    Subscriber,
    SubscriberStatus,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class DeliveryRules:
    """How sending behaves; read from the app config (NEWSLETTER_*)."""

    batch_size: int = 100
    retry_delays: tuple[float, ...] = (60.0, 300.0, 1800.0, 7200.0)
    lease_seconds: int = 120
    stall_seconds: int = 120
    max_error_streak: int = 50
    # False: marks skip the wait for PostgreSQL's disk flush (NEWSLETTER_SYNCHRONOUS_COMMIT).
    synchronous_commit: bool = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliveryRules:
        return cls(
            batch_size=int(config["NEWSLETTER_BATCH_SIZE"]),
            retry_delays=tuple(config["NEWSLETTER_RETRY_DELAYS"]),
            lease_seconds=int(config["NEWSLETTER_LEASE_SECONDS"]),
            stall_seconds=int(config["NEWSLETTER_STALL_SECONDS"]),
            max_error_streak=int(config["NEWSLETTER_MAX_ERROR_STREAK"]),
            synchronous_commit=bool(config["NEWSLETTER_SYNCHRONOUS_COMMIT"]),
        )

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th try failed for a temporary reason."""
        return self.retry_delays[min(attempts, len(self.retry_delays)) - 1]


@dataclass
class BatchResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    stopped: str | None = None  # why the batch ended early, if it did
    retry_at: list[datetime] = field(default_factory=list)


def _rows(send_id: int, first_id: int, last_id: int) -> ColumnElement[bool]:
    return and_(Delivery.send_id == send_id, Delivery.id.between(first_id, last_id))


def set_rows(session: DbSession, where: ColumnElement[bool], **values: Any) -> int:
    # A plain table UPDATE: no ORM bookkeeping on the path taken once per message.
    table = cast(Table, Delivery.__table__)
    result = session.execute(update(table).where(where).values(**values))
    return int(result.rowcount)  # type: ignore[attr-defined]


def claim_batch(
    session: DbSession, send_id: int, first_id: int, last_id: int, *, owner: str, now: datetime
) -> tuple[str, int, list[int]]:
    """Skip rows whose subscriber left, then claim the due rows of the range; flushes only.

    Returns the claim, the send's error streak so far, and the claimed ids
    (none when the send is no longer sending).
    """
    streak = session.scalar(
        update(Send)
        .where(Send.id == send_id, Send.status == SendStatus.SENDING)
        .values(active_at=now)
        .returning(Send.error_streak)
        .execution_options(synchronize_session=False)
    )
    claim = f"{owner}:{uuid.uuid4().hex[:12]}"
    if streak is None:
        return claim, 0, []
    gone = select(Subscriber.id).where(Subscriber.status != SubscriberStatus.CONFIRMED)
    set_rows(
        session,
        _rows(send_id, first_id, last_id)
        & (Delivery.status == DeliveryStatus.QUEUED)
        & Delivery.subscriber_id.in_(gone),
        status=DeliveryStatus.SKIPPED,
        last_error="unsubscribed before this was sent",
        updated_at=now,
    )
    due = or_(
        and_(Delivery.status == DeliveryStatus.QUEUED, Delivery.next_attempt_at <= now),
        # Rows an earlier run of this very message claimed before its worker died.
        and_(Delivery.status == DeliveryStatus.SENDING, Delivery.claim.startswith(f"{owner}:")),
    )
    ids = session.scalars(
        update(Delivery)
        .where(_rows(send_id, first_id, last_id), due)
        .values(
            status=DeliveryStatus.SENDING,
            claim=claim,
            claimed_at=now,
            attempts=Delivery.attempts + 1,
            updated_at=now,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    return claim, streak, sorted(ids)


_DELIVERIES = cast(Table, Delivery.__table__)
# Built once: this runs once per message, and a fresh statement costs more than its execution.
_MARK_SENT = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("delivery_id"), _DELIVERIES.c.claim == bindparam("mine"))
    .values(
        status=DeliveryStatus.SENT,
        sent_at=bindparam("now"),
        message_id=bindparam("sent_id"),
        claim=None,
        last_error=None,
        updated_at=bindparam("now"),
    )
)


def mark_sent(
    executor: DbSession | Connection,
    delivery_id: int,
    *,
    claim: str,
    message_id: str,
    now: datetime,
) -> bool:
    """Record that the server accepted the message; False if the claim was lost meanwhile.

    On an autocommit connection (``autocommit_connection``) the mark is committed when
    this returns; on a session, at the caller's commit.
    """
    params = {"delivery_id": delivery_id, "mine": claim, "now": now, "sent_id": message_id}
    return bool(executor.execute(_MARK_SENT, params).rowcount)  # type: ignore[attr-defined]


@contextmanager
def autocommit_connection(session: DbSession, *, synchronous: bool = True) -> Iterator[Connection]:
    """A connection of its own on which each statement is a transaction, committed on return.

    With ``synchronous`` False (PostgreSQL only) a commit returns before its WAL record is
    flushed to disk: a crash of the worker or the app still keeps every mark committed, but a
    crash of PostgreSQL itself may lose the last ones (under a second's worth), whose
    messages are then sent again.
    """
    with session.get_bind().engine.connect() as connection:
        marks = connection.execution_options(isolation_level="AUTOCOMMIT")
        relaxed = not synchronous and marks.dialect.name == "postgresql"
        if relaxed:
            marks.exec_driver_sql("SET synchronous_commit TO OFF")
        try:
            yield marks
        finally:
            if relaxed and not marks.invalidated:
                # The connection goes back to the pool: leave it as it came.
                try:
                    marks.exec_driver_sql("RESET synchronous_commit")
                except DBAPIError:
                    marks.invalidate()


def mark_refused(
    session: DbSession,
    delivery_id: int,
    *,
    claim: str,
    error: MailError,
    attempts: int,
    rules: DeliveryRules,
    now: datetime,
) -> datetime | None:
    """Record a refusal: retried later (returns when) or failed for good (returns None)."""
    mine = (Delivery.id == delivery_id) & (Delivery.claim == claim)
    if error.temporary and attempts < rules.max_attempts:
        due = now + timedelta(seconds=rules.retry_delay(attempts))
        set_rows(session, mine, status=DeliveryStatus.QUEUED, next_attempt_at=due, claim=None,
             last_error=error.reply[:2000], updated_at=now)  # fmt: skip
        return due
    reason = (
        error.reply if not error.temporary else f"gave up after {attempts} tries: {error.reply}"
    )
    set_rows(session, mine, status=DeliveryStatus.FAILED, claim=None, last_error=reason[:2000],
         updated_at=now)  # fmt: skip
    return None


def release(session: DbSession, ids: list[int], *, claim: str, now: datetime) -> int:
    """Give claimed rows back untried (their attempt does not count)."""
    if not ids:
        return 0
    return set_rows(
        session,
        Delivery.id.in_(ids) & (Delivery.claim == claim),
        status=DeliveryStatus.QUEUED,
        claim=None,
        attempts=Delivery.attempts - 1,
        updated_at=now,
    )


def stop_send(session: DbSession, send_id: int, reason: str, *, now: datetime) -> None:
    session.execute(
        update(Send)
        .where(Send.id == send_id, Send.status == SendStatus.SENDING)
        .values(status=SendStatus.STOPPED, stop_reason=reason[:2000], finished_at=now)
        .execution_options(synchronize_session=False)
    )


def finish_if_done(session: DbSession, send_id: int, *, now: datetime) -> None:
    """Mark the send done once all its rows are written and none is queued or being sent."""
    open_rows = (
        select(Delivery.id)
        .where(
            Delivery.send_id == send_id,
            Delivery.status.in_([DeliveryStatus.QUEUED, DeliveryStatus.SENDING]),
        )
        .exists()
    )
    session.execute(
        update(Send)
        .where(
            Send.id == send_id,
            Send.status == SendStatus.SENDING,
            Send.listed_through.is_(None),
            ~open_rows,
        )
        .values(status=SendStatus.DONE, finished_at=now)
        .execution_options(synchronize_session=False)
    )


def run_batch(
    session: DbSession,
    mailer: Mailer,
    config: Mapping[str, Any],
    *,
    send_id: int,
    first_id: int,
    last_id: int,
    owner: str,
    clock: Clock,
) -> BatchResult:
    """Send the due rows of one range of a send; commits after every row (the task's door).

    Idempotent: rows already sent, skipped or failed are left alone, and a
    range nobody can claim does nothing.  Never raises for a refused message.
    """
    rules = DeliveryRules.from_config(config)
    result = BatchResult()
    claim, streak, ids = claim_batch(session, send_id, first_id, last_id, owner=owner, now=clock())
    session.commit()
    if not ids:
        finish_if_done(session, send_id, now=clock())
        session.commit()
        return result
    send = session.get(Send, send_id)
    assert send is not None
    composer = NewsletterComposer(session, send.post_id, config)
    rows = session.execute(
        select(Delivery.id, Delivery.attempts, Subscriber.id, Subscriber.email)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.id)
    ).all()
    session.commit()
    remaining = [row[0] for row in rows]
    try:
        with autocommit_connection(session, synchronous=rules.synchronous_commit) as marks:
            for delivery_id, attempts, subscriber_id, email in rows:
                message = composer.compose(subscriber_id, email, delivery_id)
                try:
                    mailer.send(message)
                except MailError as error:
                    remaining.remove(delivery_id)
                    due = mark_refused(session, delivery_id, claim=claim, error=error,
                                       attempts=attempts, rules=rules, now=clock())  # fmt: skip
                    if due is None:
                        result.failed += 1
                    else:
                        result.retried += 1
                        result.retry_at.append(due)
                    streak += 1
                    if streak >= rules.max_error_streak:
                        reason = f"stopped after {streak} errors in a row; the last: {error.reply}"
                        stop_send(session, send_id, reason, now=clock())
                        result.stopped = reason
                    elif error.connection_lost:
                        # Retrying the rest now would only fail the same way.
                        result.stopped = f"the mail server could not be reached: {error.reply}"
                    session.commit()
                    if result.stopped:
                        break
                    continue
                remaining.remove(delivery_id)
                sent_id = str(message.extra_headers["Message-ID"])
                if not mark_sent(marks, delivery_id, claim=claim, message_id=sent_id, now=clock()):
                    result.stopped = "another worker took this batch over"
                    log.warning("send %s: lost the claim on delivery %s", send_id, delivery_id)
                    return result
                result.sent += 1
                streak = 0
        if remaining:
            release(session, remaining, claim=claim, now=clock())
        session.execute(
            update(Send)
            .where(Send.id == send_id)
            .values(error_streak=streak)
            .execution_options(synchronize_session=False)
        )
        finish_if_done(session, send_id, now=clock())
        session.commit()
    finally:
        mailer.close()
    return result
