"""The staff's subscriber roster: the list, the counts, and the CSV import and export.

Only staff who manage subscribers may use these; they flush and never
commit, and the import's confirmation emails go out after the door commits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.content.services import find_or_create_tags
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession
from broadsheet.newsletter.models import Subscriber, SubscriberStatus, SubscriberTag
from broadsheet.newsletter.services import SUBSCRIBER_EMAIL_TASK, normalise_email
from broadsheet.outbox.services import queue_emails

CSV_FIELDS = ("email", "status", "tags", "consent", "created_at", "confirmed_at")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def neutralise(cell: str) -> str:
    """The cell as exported: a leading quote before a formula start, so it stays text.

    A cell that already starts with the quote gets another, so that ``restore``
    gives back exactly what was exported, whatever the value.
    """
    return QUOTE + cell if cell.startswith((*FORMULA_STARTS, QUOTE)) else cell


def restore(cell: str) -> str:
    """The value of an imported cell: what ``neutralise`` added is taken off again."""
    if cell.startswith(QUOTE) and cell[1:].startswith((*FORMULA_STARTS, QUOTE)):
        return cell[1:]
    return cell


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
        row = {(k or "").strip().lower(): restore(v or "") for k, v in raw.items()}
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
    queue_emails(session, task=SUBSCRIBER_EMAIL_TASK, kind="confirm",
                 recipients=[(s.id, s.email) for s in pending], now=now)  # fmt: skip
    return report


def _time(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def export_subscribers(session: DbSession, *, actor: Actor) -> Iterator[str]:
    """Every subscriber as CSV lines (header first), read in chunks, with tags and status.

    Raises Forbidden here, before the first line, so that a door can refuse
    before its response starts.  No cell starts like a formula (see
    ``neutralise``); the file imports back as it is.
    """
    require(actor, Action.MANAGE_SUBSCRIBERS)
    return _export_lines(session)


def _export_lines(session: DbSession) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Sequence[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise(value) for value in values])
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
