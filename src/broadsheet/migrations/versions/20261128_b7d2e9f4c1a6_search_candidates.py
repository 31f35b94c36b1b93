"""content: search finds its candidates without reading every match

Revision ID: b7d2e9f4c1a6
Revises: 5aaf93adf41e
Created: 2026-11-28 00:00:00

PostgreSQL: ``search_documents`` is rebuilt so that a search reads a bounded
number of rows however common its words are:

- ``head_vector``: the title (A) and the public tag names (B), small, with
  its own GIN index: the title and tag matches are found apart from the body
  matches, so an old title match is never crowded out by newer body matches;
- ``document``: title (A), tag names and excerpt (B) and body (C) in one
  column (no concatenation per row), under the GIN index;
- ``listed_at``: the public date of a published, untrashed post (NULL
  otherwise), with a btree, so the newest matches of a common query are read
  newest first and a search needs no join to ``posts`` to know what readers
  may see.  A trigger keeps it in step with status, date and trash.

The upgrade only expands, as every migration does (it runs while the previous
release still serves): the new columns are added and filled for every post,
and the previous layout's ``text_vector`` and ``tag_vector`` stay, no longer
kept up to date, so that the previous release's searches go on working until
it stops (without their index, dropped here: slower, for that while).  A
later release drops the two columns.  SQLite's FTS5 table is unchanged (it
already holds the title and tags as columns of their own).
"""

from alembic import op

from broadsheet.migrations.earlier import or_replace, revision_module

revision = "b7d2e9f4c1a6"
down_revision = "5aaf93adf41e"
branch_labels = None
depends_on = None

_LISTED = "CASE WHEN {p}.status = 'published' AND {p}.deleted_at IS NULL THEN {p}.published_at END"

REFRESH = f"""
CREATE OR REPLACE FUNCTION broadsheet_search_refresh(ids integer[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO search_documents (post_id, listed_at, head_vector, document)
    SELECT v.id, v.listed_at, v.head, v.head || v.body
    FROM (
        SELECT p.id, {_LISTED.format(p="p")} AS listed_at,
               setweight(to_tsvector(c.cfg, p.title), 'A')
            || setweight(to_tsvector(c.cfg, coalesce(tg.names, '')), 'B') AS head,
               setweight(to_tsvector(c.cfg, coalesce(p.excerpt, '')), 'B')
            || setweight(to_tsvector(c.cfg, coalesce(p.markdown, '')), 'C') AS body
        FROM (SELECT DISTINCT unnest(ids) AS id) wanted
        JOIN posts p ON p.id = wanted.id
        CROSS JOIN (SELECT broadsheet_search_language() AS cfg) c
        LEFT JOIN broadsheet_search_tag_names(ids) tg ON tg.post_id = p.id
    ) v
    ON CONFLICT (post_id) DO UPDATE
    SET listed_at = EXCLUDED.listed_at, head_vector = EXCLUDED.head_vector,
        document = EXCLUDED.document
$$
"""
# A post's tags are in both vectors now: a change of tags rewrites its whole entry.
RETAG = """
CREATE OR REPLACE FUNCTION broadsheet_search_retag(ids integer[]) RETURNS void
LANGUAGE sql AS $$
    SELECT broadsheet_search_refresh(ids)
$$
"""
# How many posts a query matches, in the planner's own estimate from the index's statistics (a
# plan, no rows), anywhere and in the title and tags; and how many posts there are.  Search
# picks its road with them: newest first along the date while matches are common, through the
# full-text index when they are rare.  (VOLATILE: a function that runs EXPLAIN must be.)
ESTIMATE = """
CREATE FUNCTION broadsheet_search_estimate(query tsquery) RETURNS float8[]
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    documents json;
    heads json;
BEGIN
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM search_documents WHERE document @@ $1'
        INTO documents USING query;
    EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM search_documents WHERE head_vector @@ $1'
        INTO heads USING query;
    RETURN ARRAY[
        (documents -> 0 -> 'Plan' ->> 'Plan Rows')::float8,
        (heads -> 0 -> 'Plan' ->> 'Plan Rows')::float8,
        (SELECT greatest(reltuples, 1)::float8 FROM pg_class
         WHERE oid = 'search_documents'::regclass)
    ];
END $$
"""
LISTED = [
    f"""
    CREATE FUNCTION broadsheet_search_post_listed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF current_setting('broadsheet.search_deferred', true) = 'on' THEN RETURN NULL; END IF;
        UPDATE search_documents SET listed_at = {_LISTED.format(p="NEW")}
        WHERE post_id = NEW.id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_post_listed AFTER UPDATE OF status, published_at, deleted_at ON posts
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.published_at IS DISTINCT FROM NEW.published_at
          OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION broadsheet_search_post_listed()
    """,
]

# The layout before, for the way down: the previous revision's own functions.
SEARCH_REVISION = "20261127_5c1e8a9d3f27_search.py"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The previous layout's index (the new one takes its name); its columns stay for now.
    op.execute("DROP INDEX IF EXISTS ix_search_documents")
    op.execute(
        "ALTER TABLE search_documents ALTER COLUMN text_vector SET DEFAULT '',"
        " ADD COLUMN listed_at timestamp with time zone,"
        " ADD COLUMN head_vector tsvector NOT NULL DEFAULT '',"
        " ADD COLUMN document tsvector NOT NULL DEFAULT ''"
    )
    op.execute(REFRESH)
    op.execute(RETAG)
    op.execute(ESTIMATE)
    for statement in LISTED:
        op.execute(statement)
    op.execute("SELECT broadsheet_search_refresh(ARRAY(SELECT id FROM posts))")
    op.execute("CREATE INDEX ix_search_documents ON search_documents USING gin (document)")
    op.execute("CREATE INDEX ix_search_heads ON search_documents USING gin (head_vector)")
    op.execute(
        "CREATE INDEX ix_search_listed ON search_documents (listed_at) WHERE listed_at IS NOT NULL"
    )
    op.execute("ANALYZE search_documents")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS search_post_listed ON posts")
    op.execute("DROP FUNCTION IF EXISTS broadsheet_search_post_listed()")
    op.execute("DROP FUNCTION IF EXISTS broadsheet_search_estimate(tsquery)")
    for index in ("ix_search_documents", "ix_search_heads", "ix_search_listed"):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute(
        "ALTER TABLE search_documents DROP COLUMN listed_at, DROP COLUMN head_vector,"
        " DROP COLUMN document, ALTER COLUMN text_vector DROP DEFAULT"
    )
    before = revision_module(SEARCH_REVISION)
    op.execute(or_replace(before.POSTGRES_REFRESH))
    op.execute(or_replace(before.POSTGRES_RETAG))
    op.execute("SELECT broadsheet_search_refresh(ARRAY(SELECT id FROM posts))")
    op.execute(
        "CREATE INDEX ix_search_documents ON search_documents"
        " USING gin ((text_vector || tag_vector))"
    )
