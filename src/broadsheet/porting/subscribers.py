"""Subscriber lists: Ghost's members CSV and Substack's subscriber CSV, a row at a time.

Readers confirmed there (Ghost members subscribed to emails; Substack
subscribers whose email is not disabled) come in confirmed, their sign-up
date kept as the consent date; the others come in unsubscribed, so they are
never mailed.  A row with a bad address or date is skipped and listed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from broadsheet.addresses import is_email_address, normalise_email
from broadsheet.porting.records import ImportRefused, Record, Skipped, Source, SubscriberRecord

GHOST_COLUMNS = {"email", "subscribed_to_emails"}
SUBSTACK_COLUMNS = {"email", "email_disabled"}
TRUE = {"true", "1", "yes", "t"}


def csv_format(header: list[str]) -> str | None:
    """Which subscriber export a CSV header is: ghost-members, substack, or None."""
    names = {name.strip().lower() for name in header}
    if names >= GHOST_COLUMNS or {"email", "subscribed"} <= names:
        return "ghost-members"
    if names >= SUBSTACK_COLUMNS or {"email", "active_subscription"} <= names:
        return "substack"
    return None


def _time(value: str) -> datetime | None:
    value = value.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class SubscriberCsvReader:
    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind

    def __iter__(self) -> Iterator[Record]:
        yield Source(self.kind)
        platform = "Ghost" if self.kind == "ghost-members" else "Substack"
        try:
            with self.path.open(encoding="utf-8-sig", newline="") as file:
                reader = csv.DictReader(file)
                if csv_format(list(reader.fieldnames or [])) != self.kind:
                    raise ImportRefused(f"this CSV file is not a {platform} subscriber export")
                for line, raw in enumerate(reader, start=2):
                    row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()
                           if isinstance(v, str)}  # fmt: skip
                    yield self._row(line, row, platform)
        except UnicodeDecodeError:
            raise ImportRefused("the CSV file is not UTF-8 text") from None
        except csv.Error as error:
            raise ImportRefused(f"the CSV file cannot be read ({error})") from None

    def _row(self, line: int, row: dict[str, str], platform: str) -> Record:
        email = normalise_email(row.get("email", ""))
        if not is_email_address(email):
            return Skipped("subscriber", f"line {line}", f"{row.get('email', '')[:60]!r} is not "
                           "an email address")  # fmt: skip
        created = _time(row.get("created_at", ""))
        if created is None:
            return Skipped("subscriber", f"line {line}", f"{row.get('created_at', '')[:40]!r} "
                           "is not a date")  # fmt: skip
        if self.kind == "ghost-members":
            flag = row.get("subscribed_to_emails", row.get("subscribed", ""))
            confirmed = flag.lower() in TRUE
            if row.get("deleted_at"):
                confirmed = False
        else:
            confirmed = row.get("email_disabled", "").lower() not in TRUE
        return SubscriberRecord(
            key=email,
            email=email,
            status="confirmed" if confirmed else "unsubscribed",
            created_at=created,
            name=row.get("name", ""),
            consent=f"Subscribed on {platform} on {created.date().isoformat()}; imported from "
            f"its subscriber export.",
        )
