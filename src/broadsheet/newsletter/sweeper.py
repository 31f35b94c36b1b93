"""The sweeper and dispatch: turning a send's due rows into batch tasks, and taking back work
that stopped moving.

Batches are enqueued by task name after the caller commits; the sweeper runs
on the beat and is safe to run while batches run, and twice at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import func, select, update

from broadsheet.extensions import DbSession
from broadsheet.newsletter.delivery import DeliveryRules, finish_if_done, set_rows
from broadsheet.newsletter.models import Delivery, DeliveryStatus, Send, SendStatus
from broadsheet.queue import enqueue_after_commit


def due_ranges(
    session: DbSession, send_id: int, *, now: datetime, batch_size: int
) -> list[tuple[int, int]]:
    """The due queued rows of a send as (first id, last id) ranges of ``batch_size`` rows."""
    number = func.row_number().over(order_by=Delivery.id) - 1
    rows = (
        select(Delivery.id.label("id"), (number // batch_size).label("chunk"))
        .where(
            Delivery.send_id == send_id,
            Delivery.status == DeliveryStatus.QUEUED,
            Delivery.next_attempt_at <= now,
        )
        .subquery()
    )
    ranges = session.execute(
        select(func.min(rows.c.id), func.max(rows.c.id))
        .group_by(rows.c.chunk)
        .order_by(rows.c.chunk)
    ).all()
    return [(int(first), int(last)) for first, last in cast(list[tuple[int, int]], ranges)]


def dispatch(
    session: DbSession, send_id: int, *, now: datetime, batch_size: int
) -> list[tuple[int, int]]:
    """Queue (after commit) one batch task per range of the send's due rows, and the next step
    of its listing when that is not complete; flushes only."""

    ranges = due_ranges(session, send_id, now=now, batch_size=batch_size)
    _enqueue_batches(session, send_id, ranges, now=now)
    listing = session.scalar(
        select(Send.listed_through).where(Send.id == send_id, Send.status == SendStatus.SENDING)
    )
    if listing is not None:
        enqueue_after_commit(session, "broadsheet.list_recipients", send_id)
    return ranges


def dispatch_rows(
    session: DbSession, send_id: int, ids: list[int], *, now: datetime, batch_size: int
) -> list[tuple[int, int]]:
    """Queue (after commit) batches for the rows ``ids`` (sorted) just written; flushes only."""
    ranges = [
        (ids[start], ids[min(start + batch_size, len(ids)) - 1])
        for start in range(0, len(ids), batch_size)
    ]
    _enqueue_batches(session, send_id, ranges, now=now)
    return ranges


def _enqueue_batches(
    session: DbSession, send_id: int, ranges: list[tuple[int, int]], *, now: datetime
) -> None:

    session.execute(
        update(Send)
        .where(Send.id == send_id)
        .values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    for first, last in ranges:
        enqueue_after_commit(session, "broadsheet.send_batch", send_id, first, last)


@dataclass
class SweepReport:
    reclaimed: int = 0
    gave_up: int = 0
    dispatched: dict[int, int] = field(default_factory=dict)


def sweep(session: DbSession, config: Mapping[str, Any], *, now: datetime) -> SweepReport:
    """Take back claims older than the lease and re-queue the due work of idle sends.

    Flushes only; the batches are enqueued after the caller commits.  Safe to
    run while batches run, and twice at once: a batch queued twice finds its
    rows claimed the second time.
    """
    rules = DeliveryRules.from_config(config)
    report = SweepReport()
    stale = (Delivery.status == DeliveryStatus.SENDING) & (
        Delivery.claimed_at < now - timedelta(seconds=rules.lease_seconds)
    )
    touched = set(session.scalars(select(Delivery.send_id).where(stale).distinct()))
    report.gave_up = set_rows(
        session,
        stale & (Delivery.attempts >= rules.max_attempts),
        status=DeliveryStatus.FAILED,
        claim=None,
        last_error=f"the worker sending it stopped answering, {rules.max_attempts} times",
        updated_at=now,
    )
    report.reclaimed = set_rows(
        session,
        stale,
        status=DeliveryStatus.QUEUED,
        claim=None,
        next_attempt_at=now,
        last_error="the worker sending it stopped answering",
        updated_at=now,
    )
    quiet = now - timedelta(seconds=rules.stall_seconds)
    idle = session.scalars(
        select(Send.id).where(
            Send.status == SendStatus.SENDING,
            func.coalesce(Send.active_at, Send.created_at) < quiet,
            func.coalesce(Send.enqueued_at, Send.created_at) < quiet,
        )
    )
    for send_id in sorted(touched | set(idle)):
        finish_if_done(session, send_id, now=now)
        ranges = dispatch(session, send_id, now=now, batch_size=rules.batch_size)
        if ranges:
            report.dispatched[send_id] = len(ranges)
    return report
