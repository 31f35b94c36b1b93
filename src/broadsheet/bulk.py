"""Many rows at once, for demo content, imports and benchmarks: COPY on PostgreSQL, batches
elsewhere.

None of this goes through the ORM: callers that need the page cache to notice
call ``page_cache.mark_changed`` themselves.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Table, func, insert, select, text

from broadsheet.extensions import DbSession


def next_id(session: DbSession, column: Any) -> int:
    """One past the largest id in ``column`` (1 for an empty table)."""
    return int(session.scalar(select(func.coalesce(func.max(column), 0))) or 0) + 1


def bulk_insert(session: DbSession, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (all with the same keys) in the session's transaction."""
    if not rows:
        return
    columns = list(rows[0])
    if session.get_bind().dialect.name == "postgresql":
        # COPY sees values, not the columns' types: an enum is written as its value, and a
        # JSON column's value as JSON text.
        as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
        raw: Any = session.connection().connection.dbapi_connection
        with raw.cursor() as cursor:
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(
                        [
                            json.dumps(row[c])
                            if c in as_json
                            else row[c].value
                            if isinstance(row[c], enum.Enum)
                            else row[c]
                            for c in columns
                        ]
                    )
    else:
        for start in range(0, len(rows), 5000):
            session.execute(insert(table), list(rows[start : start + 5000]))


def insert_returning_ids(
    session: DbSession, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` (all with the same keys, no id) and return their new ids, in order.
    On PostgreSQL the ids are taken from the table's sequence first (safe beside other
    writers) and the rows go in by COPY; elsewhere by one INSERT … RETURNING."""
    if not rows:
        return []
    if session.get_bind().dialect.name == "postgresql":
        ids = list(
            session.scalars(
                text(
                    f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) "
                    "FROM generate_series(1, :count)"
                ),
                {"count": len(rows)},
            )
        )
        bulk_insert(session, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
        return ids
    returning = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    return list(session.scalars(returning, list(rows)))


def reset_sequence(session: DbSession, table: str) -> None:
    """After rows went in with explicit ids, let PostgreSQL's next id follow the largest."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )
