"""Search: every word of every post and page a reader can see, ranked and highlighted.

The index is kept by the database itself (the migration's triggers on posts,
post_tags and tags), so every writer keeps it true: the services, the demo's
COPY, an import, raw SQL.  A trigger, not a generated column, because a post's
tags live in a join table that a generated column cannot read.

- PostgreSQL: ``search_documents`` holds one weighted ``tsvector`` per post
  (title A; public tag names and excerpt B; the body C), in two parts (the
  text, the tags: linking tags rewrites only the small one) under one GIN
  index on both.
  A query is read by ``websearch_to_tsquery`` (the last word also as a
  prefix, through ``to_tsquery``), ranked by ``ts_rank_cd`` blended with
  recency, and highlighted by ``ts_headline`` for the rows shown only.  The
  text-search configuration is the one the index was built with
  (``search_settings``, set from SITE_LANGUAGE by ``reindex``), so a query
  and the documents are always read alike.
- SQLite: an FTS5 table ``post_search`` with the Porter stemmer (none for
  SITE_LANGUAGE=simple), ranked by ``bm25`` with the same weights and
  recency, highlighted by ``highlight``/``snippet``.

One parser reads the syntax people know (words, "phrases", ``OR``,
``-excluded``; the last word also as a prefix) for both, so a query means the
same on either database; whatever it is given (quotes left open, SQL, markup,
control characters, a thousand characters) it answers with a query or with
nothing, never an error.  Snippets are escaped text with ``<mark>`` around
the matched words and nothing else.

When a search finds nothing, ``suggest`` offers close titles and tag names:
by trigram similarity (``pg_trgm``) on PostgreSQL, by ``difflib`` on SQLite.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import (
    Float,
    Select,
    String,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import REGCONFIG, TSQUERY, TSVECTOR
from sqlalchemy.sql.elements import ColumnElement

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.config import SEARCH_LANGUAGES as LANGUAGES
from broadsheet.content.models import Post, Tag, with_links
from broadsheet.content.paging import Page, check_page
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession

MAX_QUERY_CHARACTERS = 200  # the rest of a longer query is not read
MAX_TERMS = 12
# The newest matches ranked, at most: ranking reads each match's whole document, so a word
# found in a third of 100,000 posts would otherwise cost a third of the index per search.
# A search that matches more is narrowed with more words, not paged through.
MAX_RESULTS = 100
# A term's weight by where it was found: title, tags and excerpt, body.
WEIGHTS = {"title": 1.0, "tags": 0.4, "excerpt": 0.4, "body": 0.2}
RECENCY_DAYS = 365.0  # a year-old match counts three quarters of a new one, an old one half
SUGGESTIONS = 5
# Matches from which a query is common: its newest are found along the listing index.
COMMON_MATCHES = 10_000

# Marks the database puts around matched words and between fragments, then turned into
# markup here: control characters, taken out of the text first, so no text can forge one.
START, STOP, BETWEEN = "\x01", "\x02", "\x03"
_MARKERS = re.compile("[\x01-\x03]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKENS = re.compile(r'(-?)"([^"]*)(?:"|$)|(\S+)')
_PIECES = re.compile(r"[^\W_]+")
# Markdown's own punctuation, left out of a snippet: emphasis, code, headings, quotes, links.
_MARKDOWN = re.compile(r"\*{1,3}|_{2,3}|`+|^#{1,6}\s|^>\s?|\]\([^)]*\)|[\[\]]", re.MULTILINE)

_documents = table(
    "search_documents",
    column("post_id"),
    column("text_vector", TSVECTOR),
    column("tag_vector", TSVECTOR),
)
# What the GIN index is built on (the migration's expression, to the letter): text and tags.
_document = _documents.c.text_vector.op("||", return_type=TSVECTOR)(_documents.c.tag_vector)
_fts = table("post_search", column("rowid"), column("post_search"))
_settings = table("search_settings", column("id"), column("language"))


# Reading a query -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """A word or a quoted phrase: as typed (for PostgreSQL's parser) and as word pieces."""

    text: str
    pieces: tuple[str, ...]
    phrase: bool = False


@dataclass(frozen=True)
class Query:
    """A search as read: every clause must match (any one term of it); no excluded term may.

    ``prefix`` is the last word when it may also match as the start of a longer
    word (it was typed last, alone, outside quotes).
    """

    text: str
    clauses: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    prefix: str | None = None
    cut: bool = False  # the query was longer than MAX_QUERY_CHARACTERS

    @property
    def empty(self) -> bool:
        """Nothing to look for: no word at all, or only excluded ones."""
        return not self.clauses

    @property
    def words(self) -> list[str]:
        """The words looked for, in order (for suggestions)."""
        return [piece for clause in self.clauses for term in clause for piece in term.pieces]


def parse(raw: str) -> Query:
    """Read what a reader typed; anything at all gives a Query (perhaps an empty one)."""
    cleaned = _CONTROL.sub(" ", raw)
    cut = len(cleaned) > MAX_QUERY_CHARACTERS
    cleaned = " ".join(cleaned[:MAX_QUERY_CHARACTERS].split())
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    last_bare: Term | None = None
    for match in _TOKENS.finditer(cleaned):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if bare == "OR":
            join_next = bool(clauses)
            continue
        if bare is not None:
            negated = "-" if bare.startswith("-") and len(bare) > 1 else ""
            words = bare[1:] if negated else bare
            words = words.replace('"', "")
        else:
            words = quoted
        pieces = tuple(piece.lower() for piece in _PIECES.findall(words))
        if not pieces:
            continue
        term = Term(words, pieces, phrase=bare is None or len(pieces) > 1)
        if negated:
            excluded.append(term)
            join_next, last_bare = False, None
            continue
        if join_next:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        join_next = False
        last_bare = term if bare is not None and not term.phrase else None
        if len(clauses) + len(excluded) >= MAX_TERMS:
            break
    prefix = None
    # The last word typed, alone in its clause, also matches longer words (search as you type).
    if (
        last_bare is not None
        and clauses
        and clauses[-1] == [last_bare]
        and cleaned.endswith(last_bare.text)
    ):
        prefix = last_bare.pieces[0]
    return Query(cleaned, tuple(tuple(c) for c in clauses), tuple(excluded), prefix, cut=cut)


# PostgreSQL -------------------------------------------------------------------------------------


def _websearch_text(query: Query) -> str:
    """The query again in ``websearch_to_tsquery``'s syntax, but for the prefix word."""

    def spelled(term: Term) -> str:
        return f'"{term.text}"' if term.phrase else term.text

    parts = []
    clauses = query.clauses[:-1] if query.prefix is not None else query.clauses
    for clause in clauses:
        parts.append(" OR ".join(spelled(term) for term in clause))
    parts += [f"-{spelled(term)}" for term in query.excluded]
    return " ".join(parts)


def _language(session: DbSession) -> str:
    found = session.scalar(select(_settings.c.language).where(_settings.c.id == 1))
    return found if found in LANGUAGES else "english"


def _tsquery(session: DbSession, query: Query) -> str:
    """The query as PostgreSQL's ``tsquery`` text, computed once, in the index's language."""
    config = cast(literal(_language(session)), REGCONFIG)
    wanted: ColumnElement[Any] = func.websearch_to_tsquery(config, _websearch_text(query))
    if query.prefix is not None:
        # Only letters and digits reach to_tsquery, so its own syntax cannot be spoken to it.
        prefixed = func.to_tsquery(config, f"{query.prefix}:*")
        wanted = wanted.op("&&")(prefixed)
    return str(session.scalar(select(cast(wanted, String))) or "")


# SQLite -----------------------------------------------------------------------------------------


def _fts_match(query: Query) -> str:
    """The query as an FTS5 expression: every piece quoted, so FTS5's syntax is never spoken."""

    def spelled(term: Term, prefix: bool = False) -> str:
        quoted = '"' + " ".join(term.pieces) + '"'
        return quoted + "*" if prefix else quoted

    parts = []
    for index, clause in enumerate(query.clauses):
        last = index == len(query.clauses) - 1 and query.prefix is not None
        parts.append("(" + " OR ".join(spelled(term, prefix=last) for term in clause) + ")")
    expression = " AND ".join(parts)
    for term in query.excluded:
        expression = f"({expression}) NOT {spelled(term)}"
    return expression


# Matching and ranking --------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """How one query narrows a select of posts, and the score to order it by (best first)."""

    restrict: Callable[[Select[Any]], Select[Any]]
    score: ColumnElement[float]
    dialect: str
    argument: str  # the tsquery text, or the FTS5 expression


def _age_days(now: datetime, dialect: str) -> ColumnElement[Any]:
    when = func.coalesce(Post.published_at, Post.updated_at)
    if dialect == "postgresql":
        return func.extract("epoch", literal(now) - when) / 86400.0
    return func.julianday(now.replace(tzinfo=None).isoformat(sep=" ")) - func.julianday(when)


def _recency(now: datetime, dialect: str) -> ColumnElement[float]:
    age = func.max(_age_days(now, dialect), 0.0) if dialect == "sqlite" else func.greatest(
        _age_days(now, dialect), 0.0
    )  # fmt: skip
    return cast(0.5 + 0.5 / (1.0 + age / RECENCY_DAYS), Float)


_ESTIMATE = text(
    "EXPLAIN (FORMAT JSON) SELECT 1 FROM search_documents "
    "WHERE (text_vector || tag_vector) @@ CAST(:tsquery AS tsquery)"
)


def _newest(matched: Select[Any], *, common: bool = True) -> Select[Any]:
    """``matched`` cut to its newest MAX_RESULTS posts, the ones that are ranked.

    A ``common`` query walks the listing index newest first and stops at
    MAX_RESULTS matches, so a word in a third of the site costs a few hundred
    documents; a rarer one is found through the full-text index, then sorted
    (ordering by an expression no index holds keeps PostgreSQL on that road).
    """
    when = Post.published_at if common else func.coalesce(Post.published_at, Post.updated_at)
    newest = (
        matched.with_only_columns(Post.id)
        .order_by(None)
        .order_by(when.desc(), Post.id.desc())
        .limit(MAX_RESULTS)
    )
    return matched.where(Post.id.in_(newest.scalar_subquery()))


def matcher(session: DbSession, query: Query, *, now: datetime) -> Matcher:
    """Narrow a ``select`` over posts to the posts matching ``query``, with a score to rank by.

    A title match outweighs a tag or excerpt match, which outweighs a body
    match; newer posts weigh a little more (never more than the place a word
    was found in).  The query must not be empty.
    """
    dialect = session.get_bind().dialect.name
    recency = _recency(now, dialect)
    if dialect == "postgresql":
        argument = _tsquery(session, query)
        tsquery = cast(bindparam("search_tsquery", argument), TSQUERY)
        rank = func.ts_rank_cd(
            literal_column(
                f"'{{0.1, {WEIGHTS['body']}, {WEIGHTS['tags']}, {WEIGHTS['title']}}}'::float4[]"
            ),
            _document,
            tsquery,
        )

        # How common the query is decides the road (see _newest): the planner's own estimate
        # from the index's statistics, which costs a plan and no rows.
        plan = session.scalar(_ESTIMATE, {"tsquery": argument})
        common = float(plan[0]["Plan"]["Plan Rows"]) >= COMMON_MATCHES

        def restrict_pg(select_: Select[Any]) -> Select[Any]:
            return _newest(
                select_.join(_documents, _documents.c.post_id == Post.id).where(
                    _document.op("@@")(tsquery)
                ),
                common=common,
            )

        return Matcher(restrict_pg, rank * recency, dialect, argument)
    expression = _fts_match(query)
    bm25 = func.bm25(
        literal_column("post_search"),
        WEIGHTS["title"],
        WEIGHTS["tags"],
        WEIGHTS["excerpt"],
        WEIGHTS["body"],
    )

    def restrict_fts(select_: Select[Any]) -> Select[Any]:
        return _newest(
            select_.join(_fts, _fts.c.rowid == Post.id).where(
                literal_column("post_search").op("MATCH")(bindparam("search_match", expression))
            )
        )

    return Matcher(restrict_fts, -bm25 * recency, dialect, expression)


# Snippets ---------------------------------------------------------------------------------------


def marked(raw: str, *, markdown: bool = False) -> Markup:
    """Text from the database with START/STOP around matches: escaped, with ``<mark>``s."""
    out: list[str] = []
    open_mark = False
    for piece in re.split("([\x01-\x03])", raw):
        if piece == START and not open_mark:
            out.append("<mark>")
            open_mark = True
        elif piece == STOP and open_mark:
            out.append("</mark>")
            open_mark = False
        elif piece == BETWEEN:
            out.append(" … ")
        elif piece and not _MARKERS.fullmatch(piece):
            out.append(str(escape(_MARKDOWN.sub("", piece) if markdown else piece)))
    if open_mark:
        out.append("</mark>")
    return Markup("".join(out).strip())  # noqa: S704 (every piece of text was escaped above)


@dataclass(frozen=True)
class Hit:
    post: Post
    title: Markup
    snippet: Markup


def _highlights(
    session: DbSession, found: Matcher, ids: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """The title and a snippet of the body, with marks, for the posts shown (and only those)."""
    if not ids:
        return {}
    clean = func.translate  # the markers are taken out of the text before marks go in
    if found.dialect == "postgresql":
        config = cast(literal(_language(session)), REGCONFIG)
        tsquery = cast(literal(found.argument), TSQUERY)
        options = "StartSel=\x01, StopSel=\x02"
        rows = session.execute(
            select(
                Post.id,
                func.ts_headline(
                    config,
                    clean(Post.title, "\x01\x02\x03", ""),
                    tsquery,
                    options + ", HighlightAll=true",
                ),
                func.ts_headline(
                    config,
                    clean(Post.markdown, "\x01\x02\x03", ""),
                    tsquery,
                    options + ", MaxFragments=2, MinWords=12, MaxWords=28, FragmentDelimiter=\x03",
                ),
            ).where(Post.id.in_(ids))
        )
        return {row[0]: (row[1], row[2]) for row in rows}
    rows = session.execute(
        text(
            "SELECT rowid, highlight(post_search, 0, :start, :stop), "
            "snippet(post_search, 3, :start, :stop, :between, 28) "
            "FROM post_search WHERE post_search MATCH :expression AND rowid IN :ids"
        ).bindparams(bindparam("ids", expanding=True)),
        {
            "start": START,
            "stop": STOP,
            "between": BETWEEN,
            "expression": found.argument,
            "ids": list(ids),
        },
    )
    return {row[0]: (row[1], row[2]) for row in rows}


# Searching --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A close title (a post or page) or tag name, offered when a search finds nothing."""

    kind: str  # "post" or "tag"
    slug: str
    name: str


@dataclass(frozen=True)
class Results:
    query: Query
    page: Page
    hits: list[Hit]
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def capped(self) -> bool:
        """More matched than are ranked (MAX_RESULTS): the newest of them are shown."""
        return self.page.total >= MAX_RESULTS


def count(session: DbSession, matching: Select[Any]) -> int:
    """How many posts ``matching`` finds, counted up to MAX_RESULTS."""
    limited = matching.with_only_columns(Post.id).order_by(None).limit(MAX_RESULTS).subquery()
    return session.scalar(select(func.count()).select_from(limited)) or 0


def _load(session: DbSession, ids: Sequence[int]) -> list[Post]:
    posts = {
        p.id: p
        for p in session.scalars(select(Post).where(Post.id.in_(ids)).options(*with_links()))
    }
    return [posts[i] for i in ids if i in posts]


def search_public(
    session: DbSession, raw: str, *, now: datetime, number: int, per_page: int
) -> Results:
    """What a reader finds for ``raw``: visible posts and pages, best first, highlighted.

    Drafts, scheduled and trashed posts are never found, nor are internal tags
    (they are not in the index).  An empty query finds nothing; a search that
    finds nothing comes with suggestions.  Raises NotFound for a page past the end.
    """
    query = parse(raw)
    if query.empty:
        check_page(number, 0, per_page)
        return Results(query, Page([], number, per_page, 0), [])
    found = matcher(session, query, now=now)
    matching = found.restrict(select(Post.id).where(Post.visible_clause(now, kind=None)))
    # Every ranked match in one query (there are at most MAX_RESULTS): the page is a slice.
    ranked_ids = list(session.scalars(matching.order_by(found.score.desc(), Post.id.desc())))
    total = len(ranked_ids)
    check_page(number, total, per_page)
    ids = ranked_ids[(number - 1) * per_page : number * per_page]
    posts = _load(session, ids)
    marks = _highlights(session, found, ids)
    hits = [
        Hit(
            post,
            marked(marks.get(post.id, (post.title, ""))[0]),
            marked(marks.get(post.id, ("", post.excerpt))[1], markdown=True),
        )
        for post in posts
    ]
    suggestions = suggest(session, query, now=now) if total == 0 else []
    return Results(query, Page(posts, number, per_page, total), hits, suggestions)


def ranked(session: DbSession, query: Query, matching: Select[Any], *, now: datetime) -> Any:
    """``matching`` (a select over posts) narrowed to ``query`` and ordered best first.

    For the other listings that search (the Content API, the staff's post list):
    they bring their own filters and visibility, this brings the match and the order.
    """
    found = matcher(session, query, now=now)
    return found.restrict(matching).order_by(None).order_by(found.score.desc(), Post.id.desc())


# Did you mean ----------------------------------------------------------------------------------


def suggest(session: DbSession, query: Query, *, now: datetime) -> list[Suggestion]:
    """Titles of visible posts and pages, and public tag names, close to what was typed."""
    wanted = " ".join(query.words)
    if not wanted:
        return []
    posts: Sequence[Any]
    tags: Sequence[Any]
    if session.get_bind().dialect.name == "postgresql":
        if session.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")) is None:
            return []
        closeness = func.word_similarity(wanted, Post.title)
        posts = session.execute(
            select(Post.slug, Post.title)
            .where(Post.visible_clause(now, kind=None), literal(wanted).op("<%")(Post.title))
            .order_by(closeness.desc(), Post.id.desc())
            .limit(SUGGESTIONS)
        ).all()
        tag_closeness = func.word_similarity(wanted, Tag.name)
        tags = session.execute(
            select(Tag.slug, Tag.name)
            .where(~Tag.is_internal, literal(wanted).op("<%")(Tag.name))
            .order_by(tag_closeness.desc(), Tag.id)
            .limit(SUGGESTIONS)
        ).all()
    else:
        posts = _closest(
            session.execute(
                select(Post.slug, Post.title)
                .where(Post.visible_clause(now, kind=None))
                .order_by(Post.published_at.desc(), Post.id.desc())
                .limit(2000)
            ).all(),
            wanted,
        )
        tags = _closest(
            session.execute(select(Tag.slug, Tag.name).where(~Tag.is_internal).limit(5000)).all(),
            wanted,
        )
    return [Suggestion("tag", slug, name) for slug, name in tags] + [
        Suggestion("post", slug, title) for slug, title in posts
    ]


def _closest(rows: Sequence[Any], wanted: str) -> list[tuple[str, str]]:
    """The rows whose name has words close to every word wanted (difflib), closest first."""
    words = wanted.lower().split()
    scored = []
    for slug, name in rows:
        names = name.lower().split()
        if not names:
            continue
        closeness = min(
            max(difflib.SequenceMatcher(None, word, other).ratio() for other in names)
            for word in words
        )
        if closeness >= 0.75:
            scored.append((closeness, slug, name))
    scored.sort(key=lambda row: -row[0])
    return [(slug, name) for _, slug, name in scored[:SUGGESTIONS]]


# Keeping the index ------------------------------------------------------------------------------


_SQLITE_FILL = text(
    "INSERT INTO post_search (rowid, title, tags, excerpt, body) "
    "SELECT p.id, p.title, (SELECT group_concat(t.name, ' ') FROM post_tags pt "
    "JOIN tags t ON t.id = pt.tag_id WHERE pt.post_id = p.id AND t.name NOT LIKE '#%'), "
    "p.excerpt, p.markdown FROM posts p WHERE p.id BETWEEN :first AND :last"
)


@contextmanager
def indexed_after(session: DbSession, first_id: int) -> Iterator[None]:
    """For a bulk load (the demo's COPY): the index's triggers wait, and every post from
    ``first_id`` on is indexed once, in one statement, at the end.  SQLite's triggers are
    cheap per row, so there it changes nothing."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text("SET LOCAL broadsheet.search_deferred = 'on'"))
    yield
    session.execute(text("SET LOCAL broadsheet.search_deferred = 'off'"))
    session.execute(
        text("SELECT broadsheet_search_refresh(ARRAY(SELECT id FROM posts WHERE id >= :first))"),
        {"first": first_id},
    )


@contextmanager
def indexed_together(session: DbSession) -> Iterator[list[int]]:
    """For writing many posts and their tag links in one transaction (an import's batch): the
    index's triggers wait, and the posts whose ids the caller puts in the list yielded are
    indexed once, in one statement, at the end.  The index is written in the same
    transaction as the posts, so a commit never leaves one of them unsearchable.  SQLite's
    triggers are cheap per row, so there it changes nothing."""
    ids: list[int] = []
    if session.get_bind().dialect.name != "postgresql":
        yield ids
        return
    # On the connection: the session's pending rows are flushed inside, not before.
    session.connection().execute(text("SET LOCAL broadsheet.search_deferred = 'on'"))
    yield ids  # on an error the transaction is rolled back, and the setting with it
    session.flush()
    session.connection().execute(text("SET LOCAL broadsheet.search_deferred = 'off'"))
    if ids:
        session.execute(
            text("SELECT broadsheet_search_refresh(CAST(:ids AS integer[]))"), {"ids": ids}
        )


def posts_to_index(session: DbSession) -> int:
    return session.scalar(select(func.count()).select_from(Post)) or 0


def reindex(
    session: DbSession,
    *,
    actor: Actor,
    language: str,
    progress: Callable[[int], None],
    batch: int = 2000,
) -> int:
    """Rebuild every post's entry in the index, in ``language``; returns how many.

    For sites upgraded from before search existed, or after SITE_LANGUAGE
    changed.  Idempotent; the caller commits.  ``progress`` is told how many
    posts each step did.  Raises Forbidden below the site's settings rights,
    Invalid for a language the index cannot use.
    """
    require(actor, Action.MANAGE_SETTINGS)
    if language not in LANGUAGES:
        raise Invalid({"language": f"is {language!r}; use one of {', '.join(LANGUAGES)}"})
    dialect = session.get_bind().dialect.name
    session.execute(_settings.update().where(_settings.c.id == 1).values(language=language))
    ids = list(session.scalars(select(Post.id).order_by(Post.id)))
    if dialect == "postgresql":
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            session.execute(
                text("SELECT broadsheet_search_refresh(CAST(:ids AS integer[]))"), {"ids": chunk}
            )
            progress(len(chunk))
        return len(ids)
    stemmer = "porter " if language == "english" else ""
    session.execute(text("DROP TABLE IF EXISTS post_search"))
    session.execute(
        text(
            "CREATE VIRTUAL TABLE post_search USING fts5(title, tags, excerpt, body, "
            f"tokenize = '{stemmer}unicode61 remove_diacritics 2')"
        )
    )
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        session.execute(_SQLITE_FILL, {"first": chunk[0], "last": chunk[-1]})
        progress(len(chunk))
    return len(ids)


def outside_models(name: str | None, type_: str, _parents: dict[str, Any]) -> bool:
    """Alembic's ``include_name``: what the search migration made beside the models (the
    index's tables, FTS5's shadow tables, the trigram indexes) is not compared with them."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(("search_", "post_search"))
    if type_ == "index":
        return not name.startswith("ix_search_")
    return True
