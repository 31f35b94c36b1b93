"""content: a public search is one statement; the index is written in post order

Revision ID: d4f8a2c6e1b3
Revises: b7d2e9f4c1a6
Created: 2026-11-28 03:00:00

PostgreSQL only:

- ``broadsheet_search_ranked``: the ids a public search ranks, best first.
  It reads the planner's estimate of how common the query is, takes each list
  of candidates (title and tag matches; matches anywhere) newest first along
  the date or through the full-text index accordingly, and ranks them: what
  took the app three round trips (read the query, find and rank, show) is
  now one statement that calls this.
- ``broadsheet_search_refresh`` writes the entries it is given in the order of
  their posts' ids.  A bulk refresh (the demo, an import, ``search reindex``)
  used to write them in hash order, so the index's rows for neighbouring
  dates lay on unrelated pages and a walk newest first read a page per row.
- The previous layout's ``text_vector`` and ``tag_vector`` go: the release
  before this one stopped reading and writing them.
"""

from __future__ import annotations

from types import ModuleType

from alembic import op

from broadsheet.migrations.earlier import revision_module

revision = "d4f8a2c6e1b3"
down_revision = "b7d2e9f4c1a6"
branch_labels = None
depends_on = None


def _previous() -> ModuleType:
    """The previous revision's module, whose functions the way down puts back."""
    return revision_module("20261128_b7d2e9f4c1a6_search_candidates.py")


def _in_post_order(refresh: str) -> str:
    ordered = refresh.replace(") v\n    ON CONFLICT", ") v\n    ORDER BY v.id\n    ON CONFLICT")
    assert ordered != refresh, "the previous refresh changed: write its ordered version here"
    return ordered


# Each list's road: newest first along the date's index while the query's matches are common
# enough that ``limit`` of them come within ``walk_ratio`` times as many rows as it matches;
# through the full-text index and a sort (by an expression no index holds) below that.
RANKED = """
CREATE FUNCTION broadsheet_search_ranked(
    query tsquery, now timestamptz, heads integer, bodies integer, excluded boolean,
    weights float4[], days float8, walk_ratio float8
) RETURNS integer[] LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    estimate float8[];
    posts float8;
    found integer[];
BEGIN
    IF query IS NULL OR numnode(query) = 0 THEN
        RETURN '{}';
    END IF;
    estimate := broadsheet_search_estimate(query);
    posts := estimate[3];
    EXECUTE format($sql$
        SELECT coalesce(array_agg(c.post_id ORDER BY c.head DESC,
            ts_rank_cd($5, d.document, $1)
                * (0.5 + 0.5 / (1.0 + greatest(
                    extract(epoch FROM $2 - d.listed_at) / 86400.0, 0.0) / $6)) DESC,
            c.post_id DESC), '{}')
        FROM (
            SELECT post_id, max(head) AS head FROM (
                (SELECT post_id, 1 AS head FROM search_documents
                 WHERE head_vector @@ $1 %s AND listed_at <= $2
                 ORDER BY %s DESC LIMIT $3)
                UNION ALL
                (SELECT post_id, 0 FROM search_documents
                 WHERE document @@ $1 AND listed_at <= $2
                 ORDER BY %s DESC LIMIT $4)
            ) listed GROUP BY post_id
        ) c JOIN search_documents d ON d.post_id = c.post_id
        $sql$,
        -- A word left out may be in the body, which the small vector does not hold.
        CASE WHEN excluded THEN 'AND document @@ $1' ELSE '' END,
        CASE WHEN estimate[2] > 0 AND heads * posts / estimate[2] < walk_ratio * estimate[2]
             THEN 'listed_at' ELSE 'coalesce(listed_at, $2)' END,
        CASE WHEN estimate[1] > 0 AND bodies * posts / estimate[1] < walk_ratio * estimate[1]
             THEN 'listed_at' ELSE 'coalesce(listed_at, $2)' END)
    INTO found USING query, now, heads, bodies, weights, days;
    RETURN found;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_in_post_order(_previous().REFRESH))
    op.execute(RANKED)
    # contract: the release before this one stopped reading and writing both columns.
    op.execute(
        "ALTER TABLE search_documents DROP COLUMN IF EXISTS text_vector,"
        " DROP COLUMN IF EXISTS tag_vector"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE search_documents"
        " ADD COLUMN IF NOT EXISTS text_vector tsvector NOT NULL DEFAULT '',"
        " ADD COLUMN IF NOT EXISTS tag_vector tsvector NOT NULL DEFAULT ''"
    )
    op.execute(
        "DROP FUNCTION IF EXISTS broadsheet_search_ranked("
        "tsquery, timestamptz, integer, integer, boolean, float4[], float8, float8)"
    )
    op.execute(_previous().REFRESH)
