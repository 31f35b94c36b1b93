"""Many rows at once, for demo content and benchmarks: COPY on PostgreSQL, batches elsewhere.

Rows go in with explicit ids, so none of this goes through the ORM: callers
that need the page cache to notice call ``page_cache.mark_changed`` themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func, insert, select, text

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
        raw: Any = session.connection().connection.dbapi_connection
        with raw.cursor() as cursor:
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
    else:
        for start in range(0, len(rows), 5000):
            session.execute(insert(table), list(rows[start : start + 5000]))


def reset_sequence(session: DbSession, table: str) -> None:
    """After rows went in with explicit ids, let PostgreSQL's next id follow the largest."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
        )
