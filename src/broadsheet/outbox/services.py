"""Recording transactional emails, and sending the ones that are due.

``queue_email`` is what a domain service calls: it flushes, never commits,
and the named task is queued only once the caller commits.  ``deliver`` is
the body every email task shares; like any task body it commits.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask_mailman import EmailMessage
from sqlalchemy import or_, select, update

from broadsheet.extensions import DbSession
from broadsheet.outbox.models import EmailStatus, OutboxEmail
from broadsheet.queue import enqueue_after_commit

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=2)  # a claim a dead worker left behind is taken back after this
IDS_PER_TASK = 100

Composer = Callable[[OutboxEmail], EmailMessage | None]


class Connection(Protocol):
    """A Flask-Mailman backend opened with ``fail_silently=False``."""

    def open(self) -> Any: ...

    def close(self) -> Any: ...

    def send_messages(self, messages: Sequence[EmailMessage]) -> int: ...


def queue_emails(
    session: DbSession,
    *,
    task: str,
    kind: str,
    recipients: Sequence[tuple[int, str]],
    now: datetime,
) -> list[OutboxEmail]:
    """Record one pending email per (ref_id, address) and queue ``task`` for them after commit.

    ``task`` composes each message when it runs (so it says what is true then)
    and takes a list of outbox ids.  Flushes, never commits.
    """
    rows = [
        OutboxEmail(
            kind=kind,
            task=task,
            ref_id=ref_id,
            recipient=address,
            status=EmailStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        for ref_id, address in recipients
    ]
    session.add_all(rows)
    session.flush()
    ids = [row.id for row in rows]
    for start in range(0, len(ids), IDS_PER_TASK):
        enqueue_after_commit(session, task, ids[start : start + IDS_PER_TASK])
    return rows


def queue_email(
    session: DbSession, *, task: str, kind: str, ref_id: int, recipient: str, now: datetime
) -> OutboxEmail:
    """One email; see ``queue_emails``."""
    [row] = queue_emails(session, task=task, kind=kind, recipients=[(ref_id, recipient)], now=now)
    return row


def classify(error: Exception) -> tuple[bool, str]:
    """Whether ``error`` is worth another try, and the reason to record.

    No connection, a dropped one, or a 4xx reply is temporary; a 5xx reply or
    a message that cannot be sent at all (a bad header) is not.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        code, reply = next(iter(error.recipients.values()))
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        return 400 <= code < 500, f"{code} {text}"
    if isinstance(error, smtplib.SMTPResponseException):
        raw: bytes | str = error.smtp_error
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        return not 500 <= error.smtp_code < 600, f"{error.smtp_code} {text}"
    reason = f"{type(error).__name__}: {error}"
    return isinstance(error, OSError), reason


@dataclass
class Outcome:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    retry: dict[datetime, list[int]] = field(default_factory=dict)  # when -> outbox ids


def _claim(session: DbSession, email_ids: Sequence[int], now: datetime) -> list[int]:
    mine = []
    for email_id in email_ids:
        claimed = session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email_id,
                OutboxEmail.status == EmailStatus.PENDING,
                OutboxEmail.next_attempt_at <= now,
                or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until < now),
            )
            .values(claimed_until=now + LEASE)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            mine.append(email_id)
    session.commit()
    return mine


def deliver(
    session: DbSession,
    email_ids: Sequence[int],
    *,
    compose: Composer,
    connection: Connection,
    delays: Sequence[float],
    clock: Callable[[], datetime],
) -> Outcome:
    """Send those of ``email_ids`` that are pending and due; commits after each message.

    Idempotent: a row that is sent, finished, not yet due, or claimed by
    another run is left alone, so running twice (or at once) sends once; a
    crash between the SMTP server's acceptance and the commit sends that one
    message again.  ``compose`` returning None marks the row skipped.
    """
    outcome = Outcome()
    opened = False
    try:
        for email_id in _claim(session, email_ids, clock()):
            row = session.get(OutboxEmail, email_id)
            if row is None:
                continue
            try:
                message = compose(row)
                if message is None:
                    _finish(row, EmailStatus.SKIPPED, clock(), "nothing to send any more")
                    outcome.skipped += 1
                    session.commit()
                    continue
                if not opened:
                    connection.open()
                    opened = True
                connection.send_messages([message])
            except Exception as error:  # classified: every failure is recorded, none is lost
                _failed(row, error, delays, clock(), outcome)
            else:
                _finish(row, EmailStatus.SENT, clock(), None)
                row.attempts += 1
                outcome.sent += 1
            session.commit()
    finally:
        if opened:
            with contextlib.suppress(Exception):
                connection.close()
    return outcome


def _finish(row: OutboxEmail, status: EmailStatus, now: datetime, reason: str | None) -> None:
    row.status = status
    row.finished_at = now
    row.claimed_until = None
    if reason is not None:
        row.last_error = reason


def _failed(
    row: OutboxEmail, error: Exception, delays: Sequence[float], now: datetime, outcome: Outcome
) -> None:
    temporary, reason = classify(error)
    row.attempts += 1
    if temporary and row.attempts <= len(delays):
        row.next_attempt_at = now + timedelta(seconds=delays[row.attempts - 1])
        row.claimed_until = None
        row.last_error = reason
        outcome.retry.setdefault(row.next_attempt_at, []).append(row.id)
        log.info("%s email %s: will try again at %s: %s", row.kind, row.id,
                 row.next_attempt_at.isoformat(), reason)  # fmt: skip
        return
    _finish(row, EmailStatus.FAILED, now, reason)
    outcome.failed += 1
    log.warning("%s email %s failed after %d attempt(s): %s", row.kind, row.id, row.attempts,
                reason)  # fmt: skip


def sweep(session: DbSession, *, now: datetime, grace: timedelta) -> dict[str, list[int]]:
    """Queue again the pending emails that are due by more than ``grace`` and unclaimed.

    They lost their message (a broker that was down, a worker that died).
    Flushes nothing; the tasks go after the caller commits.  Returns task -> ids.
    """
    due = session.execute(
        select(OutboxEmail.task, OutboxEmail.id)
        .where(
            OutboxEmail.status == EmailStatus.PENDING,
            OutboxEmail.next_attempt_at <= now - grace,
            or_(OutboxEmail.claimed_until.is_(None), OutboxEmail.claimed_until < now),
        )
        .order_by(OutboxEmail.id)
        .limit(IDS_PER_TASK * 10)
    ).all()
    found: dict[str, list[int]] = {}
    for task, email_id in due:
        found.setdefault(task, []).append(email_id)
    for task, ids in found.items():
        for start in range(0, len(ids), IDS_PER_TASK):
            enqueue_after_commit(session, task, ids[start : start + IDS_PER_TASK])
    return found


def failed_emails(session: DbSession, *, limit: int = 50) -> list[OutboxEmail]:
    """The most recent emails that could not be sent, newest first."""
    return list(
        session.scalars(
            select(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.FAILED)
            .order_by(OutboxEmail.id.desc())
            .limit(limit)
        )
    )
