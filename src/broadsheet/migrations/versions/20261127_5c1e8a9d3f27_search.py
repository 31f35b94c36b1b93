"""content: full-text search, kept in step with posts and tags by the database

Revision ID: 5c1e8a9d3f27
Revises: 9d3b7e2f4a61
Created: 2026-11-27 20:00:00

PostgreSQL: ``search_documents`` holds a post's weighted ``tsvector`` in two
parts, its text (title A; excerpt B; the Markdown body C) and its public tag
names (B), under one GIN index on the two together, written by triggers on
posts, post_tags and tags, so every writer (the services, the demo's COPY, raw
SQL, an import) keeps it true.  Two parts, so that linking tags (100,000
posts' links in one COPY, or a renamed tag) rewrites only the small one.  The
text-search configuration is the one named in ``search_settings`` (set from
SITE_LANGUAGE by ``broadsheet search reindex``).  With ``pg_trgm`` available
the extension is created, with trigram indexes on titles and tag names for
"did you mean".

SQLite: an FTS5 table ``post_search`` (rowid = the post's id) kept by
triggers the same way, with the Porter stemmer.
"""

import sqlalchemy as sa
from alembic import op

revision = "5c1e8a9d3f27"
down_revision = "9d3b7e2f4a61"
branch_labels = None
depends_on = None

# Set-based throughout: a bulk insert passes 100,000 ids, so they are joined (never ``= ANY``,
# which would scan them per row) and every post's tag names are gathered in one GROUP BY.
POSTGRES_HELPERS = [
    """
    CREATE FUNCTION broadsheet_search_language() RETURNS regconfig LANGUAGE sql STABLE AS $$
        SELECT coalesce((SELECT language FROM search_settings WHERE id = 1), 'english')::regconfig
    $$
    """,
    # The public tag names of each post whose id is in ``ids`` (posts without any: no row).
    """
    CREATE FUNCTION broadsheet_search_tag_names(ids integer[])
    RETURNS TABLE (post_id integer, names text) LANGUAGE sql STABLE AS $$
        SELECT pt.post_id, string_agg(t.name, ' ')
        FROM (SELECT DISTINCT unnest(ids) AS id) wanted
        JOIN post_tags pt ON pt.post_id = wanted.id
        JOIN tags t ON t.id = pt.tag_id
        WHERE t.name NOT LIKE '#%'
        GROUP BY pt.post_id
    $$
    """,
]
# The document of each post whose id is in ``ids``, written or rewritten.
POSTGRES_REFRESH = """
CREATE FUNCTION broadsheet_search_refresh(ids integer[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO search_documents (post_id, text_vector, tag_vector)
    SELECT p.id,
           setweight(to_tsvector(c.cfg, p.title), 'A')
        || setweight(to_tsvector(c.cfg, coalesce(p.excerpt, '')), 'B')
        || setweight(to_tsvector(c.cfg, coalesce(p.markdown, '')), 'C'),
           setweight(to_tsvector(c.cfg, coalesce(tg.names, '')), 'B')
    FROM (SELECT DISTINCT unnest(ids) AS id) wanted
    JOIN posts p ON p.id = wanted.id
    CROSS JOIN (SELECT broadsheet_search_language() AS cfg) c
    LEFT JOIN broadsheet_search_tag_names(ids) tg ON tg.post_id = p.id
    ON CONFLICT (post_id) DO UPDATE
    SET text_vector = EXCLUDED.text_vector, tag_vector = EXCLUDED.tag_vector
$$
"""
# Only the tag part of the posts whose id is in ``ids``.
POSTGRES_RETAG = """
CREATE FUNCTION broadsheet_search_retag(ids integer[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE search_documents d
    SET tag_vector = setweight(to_tsvector(c.cfg, coalesce(tg.names, '')), 'B')
    FROM (SELECT DISTINCT unnest(ids) AS id) wanted
    CROSS JOIN (SELECT broadsheet_search_language() AS cfg) c
    LEFT JOIN broadsheet_search_tag_names(ids) tg ON tg.post_id = wanted.id
    WHERE d.post_id = wanted.id
$$
"""
# A bulk load (the demo's) sets broadsheet.search_deferred for its transaction: the triggers
# then leave the index alone, and the loader indexes its posts once at the end
# (content.search.indexed_after).
_DEFERRED = (
    "IF current_setting('broadsheet.search_deferred', true) = 'on' THEN RETURN NULL; END IF;"
)

POSTGRES_TRIGGERS = [
    # Posts: inserted in bulk (the demo's COPY) as one statement; edited one at a time.
    """
    CREATE FUNCTION broadsheet_search_posts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {deferred}
        PERFORM broadsheet_search_refresh(ARRAY(SELECT id FROM inserted_rows));
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_posts_inserted AFTER INSERT ON posts
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION broadsheet_search_posts_inserted()
    """,
    """
    CREATE FUNCTION broadsheet_search_post_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {deferred}
        PERFORM broadsheet_search_refresh(ARRAY[NEW.id]);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_post_changed AFTER UPDATE OF title, excerpt, markdown ON posts
    FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.excerpt IS DISTINCT FROM NEW.excerpt
          OR OLD.markdown IS DISTINCT FROM NEW.markdown)
    EXECUTE FUNCTION broadsheet_search_post_changed()
    """,
    # Tag links: added or removed in bulk as one statement each.
    """
    CREATE FUNCTION broadsheet_search_links_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {deferred}
        PERFORM broadsheet_search_retag(ARRAY(SELECT post_id FROM added_links));
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_links_added AFTER INSERT ON post_tags
    REFERENCING NEW TABLE AS added_links
    FOR EACH STATEMENT EXECUTE FUNCTION broadsheet_search_links_added()
    """,
    """
    CREATE FUNCTION broadsheet_search_links_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {deferred}
        PERFORM broadsheet_search_retag(ARRAY(SELECT post_id FROM removed_links));
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_links_removed AFTER DELETE ON post_tags
    REFERENCING OLD TABLE AS removed_links
    FOR EACH STATEMENT EXECUTE FUNCTION broadsheet_search_links_removed()
    """,
    """
    CREATE FUNCTION broadsheet_search_link_moved() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {deferred}
        PERFORM broadsheet_search_retag(ARRAY[OLD.post_id, NEW.post_id]);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_link_moved AFTER UPDATE OF post_id, tag_id ON post_tags
    FOR EACH ROW
    WHEN (OLD.post_id IS DISTINCT FROM NEW.post_id OR OLD.tag_id IS DISTINCT FROM NEW.tag_id)
    EXECUTE FUNCTION broadsheet_search_link_moved()
    """,
    # A renamed tag: every post that carries it.
    """
    CREATE FUNCTION broadsheet_search_tag_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {deferred}
        PERFORM broadsheet_search_retag(ARRAY(SELECT post_id FROM post_tags WHERE tag_id = NEW.id));
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER search_tag_renamed AFTER UPDATE OF name ON tags
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION broadsheet_search_tag_renamed()
    """,
]

POSTGRES_FUNCTIONS = [
    "broadsheet_search_posts_inserted",
    "broadsheet_search_post_changed",
    "broadsheet_search_links_added",
    "broadsheet_search_links_removed",
    "broadsheet_search_link_moved",
    "broadsheet_search_tag_renamed",
]
POSTGRES_TRIGGER_TABLES = {
    "search_posts_inserted": "posts",
    "search_post_changed": "posts",
    "search_links_added": "post_tags",
    "search_links_removed": "post_tags",
    "search_link_moved": "post_tags",
    "search_tag_renamed": "tags",
}

# SQLite: the public tag names of a post, as the FTS5 table's ``tags`` column holds them.
_SQLITE_TAGS = (
    "(SELECT group_concat(t.name, ' ') FROM post_tags pt JOIN tags t ON t.id = pt.tag_id "
    "WHERE pt.post_id = {post} AND t.name NOT LIKE '#%')"
)
SQLITE_TABLE = (
    "CREATE VIRTUAL TABLE post_search USING fts5("
    "title, tags, excerpt, body, tokenize = 'porter unicode61 remove_diacritics 2')"
)
SQLITE_TRIGGERS = {
    "post_search_post_inserted": f"""
        CREATE TRIGGER post_search_post_inserted AFTER INSERT ON posts BEGIN
            INSERT INTO post_search (rowid, title, tags, excerpt, body)
            VALUES (new.id, new.title, {_SQLITE_TAGS.format(post="new.id")}, new.excerpt,
                    new.markdown);
        END
    """,
    "post_search_post_changed": """
        CREATE TRIGGER post_search_post_changed AFTER UPDATE OF title, excerpt, markdown ON posts
        BEGIN
            UPDATE post_search SET title = new.title, excerpt = new.excerpt, body = new.markdown
            WHERE rowid = new.id;
        END
    """,
    "post_search_post_deleted": """
        CREATE TRIGGER post_search_post_deleted AFTER DELETE ON posts BEGIN
            DELETE FROM post_search WHERE rowid = old.id;
        END
    """,
    "post_search_link_added": f"""
        CREATE TRIGGER post_search_link_added AFTER INSERT ON post_tags BEGIN
            UPDATE post_search SET tags = {_SQLITE_TAGS.format(post="new.post_id")}
            WHERE rowid = new.post_id;
        END
    """,
    "post_search_link_removed": f"""
        CREATE TRIGGER post_search_link_removed AFTER DELETE ON post_tags BEGIN
            UPDATE post_search SET tags = {_SQLITE_TAGS.format(post="old.post_id")}
            WHERE rowid = old.post_id;
        END
    """,
    "post_search_link_moved": f"""
        CREATE TRIGGER post_search_link_moved AFTER UPDATE OF post_id, tag_id ON post_tags BEGIN
            UPDATE post_search SET tags = {_SQLITE_TAGS.format(post="old.post_id")}
            WHERE rowid = old.post_id;
            UPDATE post_search SET tags = {_SQLITE_TAGS.format(post="new.post_id")}
            WHERE rowid = new.post_id;
        END
    """,
    "post_search_tag_renamed": f"""
        CREATE TRIGGER post_search_tag_renamed AFTER UPDATE OF name ON tags BEGIN
            UPDATE post_search SET tags = {_SQLITE_TAGS.format(post="post_search.rowid")}
            WHERE rowid IN (SELECT post_id FROM post_tags WHERE tag_id = new.id);
        END
    """,
}


def upgrade() -> None:
    op.create_table(
        "search_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(40), nullable=False, server_default="english"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_settings")),
    )
    op.execute("INSERT INTO search_settings (id, language) VALUES (1, 'english')")
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def _upgrade_postgresql() -> None:
    op.execute(
        "CREATE TABLE search_documents ("
        " post_id integer PRIMARY KEY REFERENCES posts (id) ON DELETE CASCADE,"
        " text_vector tsvector NOT NULL,"
        " tag_vector tsvector NOT NULL DEFAULT '')"
    )
    op.execute(
        "CREATE INDEX ix_search_documents ON search_documents"
        " USING gin ((text_vector || tag_vector))"
    )
    for statement in POSTGRES_HELPERS:
        op.execute(statement)
    op.execute(POSTGRES_REFRESH)
    op.execute(POSTGRES_RETAG)
    for statement in POSTGRES_TRIGGERS:
        op.execute(statement.replace("{deferred}", _DEFERRED))
    op.execute("SELECT broadsheet_search_refresh(ARRAY(SELECT id FROM posts))")
    trgm = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    )
    if trgm.first() is not None:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_search_titles ON posts USING gin (title gin_trgm_ops)")
        op.execute("CREATE INDEX ix_search_tag_names ON tags USING gin (name gin_trgm_ops)")


def _upgrade_sqlite() -> None:
    op.execute(SQLITE_TABLE)
    for statement in SQLITE_TRIGGERS.values():
        op.execute(statement)
    op.execute(
        "INSERT INTO post_search (rowid, title, tags, excerpt, body) "
        f"SELECT p.id, p.title, {_SQLITE_TAGS.format(post='p.id')}, p.excerpt, p.markdown "
        "FROM posts p"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_search_titles")
        op.execute("DROP INDEX IF EXISTS ix_search_tag_names")
        for trigger, table in POSTGRES_TRIGGER_TABLES.items():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in POSTGRES_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        op.execute("DROP FUNCTION IF EXISTS broadsheet_search_refresh(integer[])")
        op.execute("DROP FUNCTION IF EXISTS broadsheet_search_retag(integer[])")
        op.execute("DROP FUNCTION IF EXISTS broadsheet_search_tag_names(integer[])")
        op.execute("DROP FUNCTION IF EXISTS broadsheet_search_language()")
        op.drop_table("search_documents")
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.drop_table("post_search")
    op.drop_table("search_settings")
