"""The transactional email outbox."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from broadsheet.extensions import Model, utcnow


class EmailStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for its task, or for its next try
    SENT = "sent"
    FAILED = "failed"  # a permanent refusal, or the retry schedule ran out: see last_error
    SKIPPED = "skipped"  # nothing to send any more (the account or subscription changed)


class OutboxEmail(Model):
    """One transactional email: who gets it, which task composes it, and how it went."""

    __tablename__ = "outbox_emails"
    __table_args__ = (Index("ix_outbox_emails_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))  # e.g. "password_reset", "confirm"
    task: Mapped[str] = mapped_column(String(100))  # the task that composes and sends it
    ref_id: Mapped[int] = mapped_column(Integer)  # the account or subscriber it is about
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    status: Mapped[EmailStatus] = mapped_column(
        Enum(
            EmailStatus,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=EmailStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<OutboxEmail {self.id} {self.kind} {self.status}>"
