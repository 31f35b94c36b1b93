"""Search: every word of every post and page a reader can see, ranked and highlighted.

The index is kept by the database itself (the migration's triggers on posts,
post_tags and tags), so every writer keeps it true: the services, the demo's
COPY, an import, raw SQL.  A trigger, not a generated column, because a post's
tags live in a join table that a generated column cannot read.

- PostgreSQL: ``search_documents`` holds one weighted ``tsvector`` per post
  (title A; public tag names and excerpt B; the body C), a small one of the
  title and tags alone, each under a GIN index, and the public date of a
  post readers may see (a btree).
  A query is read by ``websearch_to_tsquery`` (the last word also as a
  prefix, through ``to_tsquery``), ranked by ``ts_rank_cd`` blended with
  recency, and highlighted by ``ts_headline`` for the rows shown only.  The
  text-search configuration is the one the index was built with
  (``search_settings``, set from SITE_LANGUAGE by ``reindex``), so a query
  and the documents are always read alike.

A common word is in a quarter of the demo's posts, so ranking every match
would read tens of thousands of documents.  What is ranked is a bounded set of
candidates: the newest HEAD_CANDIDATES posts whose title and tags match, then
the newest BODY_CANDIDATES that match anywhere; a title or tag match always
ranks above a match in the text alone, however old it is.  Each is read
newest first along the date's index (a common query finds its candidates in a
few hundred rows) or through the full-text index (a rare one), as the planner
judges from the query's words.  The search page does all of it in one
statement (the database's ``broadsheet_search_ranked``, then the page's cards
and snippets), and the Content API's unfiltered search takes the same ids;
filtered (a tag, an author) it ranks the same way within its filter, as the
staff's list does, through ``ranked``.
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
from functools import cache
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import (
    Float,
    Select,
    bindparam,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.sql.elements import ColumnElement, TextClause

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.config import SEARCH_LANGUAGES as LANGUAGES
from broadsheet.content.cards import CARD_COLUMNS, CARD_WIDTH, PostCard, card, cards_in_order
from broadsheet.content.models import Post, PostKind, Tag
from broadsheet.content.paging import Page, check_page
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession

MAX_QUERY_CHARACTERS = 200  # the rest of a longer query is not read
MAX_TERMS = 12
# The matches ranked, at most: the newest whose title or tags match, and the newest that match
# anywhere.  Ranking reads each match's whole document, so a word found in a third of 100,000
# posts would otherwise cost a third of the index per search.  A search that matches more is
# narrowed with more words, not paged through.
HEAD_CANDIDATES = 50
BODY_CANDIDATES = 50
# A snippet is made from this much of the body, from just before its first match: the
# highlighter reads every word it is given, and a long post would cost it the whole text.
SNIPPET_SOURCE = 400
SNIPPET_LEAD = 100
# A term's weight by where it was found: title, tags and excerpt, body.
WEIGHTS = {"title": 1.0, "tags": 0.4, "excerpt": 0.4, "body": 0.2}
RECENCY_DAYS = 365.0  # a year-old match counts three quarters of a new one, an old one half
SUGGESTIONS = 5
# Walking the date's index newest first checks every post on the way (about a microsecond
# each); the full-text index reads each match's row out of order, and every entry of each of
# the query's words (about eight times as much per match, measured).  So a query walks while
# (limit / share of posts matched) < WALK_RATIO * matches, and takes the full-text index below.
WALK_RATIO = 8.0

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
    column("listed_at"),
    column("head_vector", TSVECTOR),
    column("document", TSVECTOR),
)
_document = _documents.c.document
_head = _documents.c.head_vector
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


@dataclass(frozen=True)
class Estimate:
    """How many posts a query matches, in the planner's estimate: anywhere, in the title and
    tags alone; and how many posts the index holds."""

    documents: float
    heads: float
    posts: float

    def walks(self, matches: float, limit: int) -> bool:
        """Whether ``limit`` of ``matches`` are best found newest first (see WALK_RATIO)."""
        return matches > 0 and limit * self.posts / matches < WALK_RATIO * matches


# A query as PostgreSQL reads it, in the configuration ``c.cfg``.
_WORDS = "websearch_to_tsquery(c.cfg, :words)"
# Only letters and digits reach to_tsquery (the prefix is one word piece), so its own syntax
# cannot be spoken to it.
_PREFIXED = _WORDS + " && to_tsquery(c.cfg, :prefix || ':*')"
# The query as read, with how common it is: for ``ranked`` (the public page's own statement
# reads it inside, _FOUND).
_READ = (
    "SELECT CAST(r.q AS text), broadsheet_search_estimate(r.q) FROM (SELECT {query} AS q"
    " FROM (SELECT broadsheet_search_language() AS cfg) c) r"
)
_READ_WORDS, _READ_PREFIXED = text(_READ.format(query=_WORDS)), text(_READ.format(query=_PREFIXED))


def _tsquery(session: DbSession, query: Query) -> tuple[str, Estimate]:
    """The query as PostgreSQL's ``tsquery`` text, read with the index's own text-search
    configuration (the migration's ``broadsheet_search_language``), and how common it is
    (``broadsheet_search_estimate``): one round trip.  The text is empty when the query holds
    only stop words."""
    params = {"words": _websearch_text(query)}
    if query.prefix is not None:
        params["prefix"] = query.prefix
    statement = _READ_WORDS if query.prefix is None else _READ_PREFIXED
    row = session.execute(statement, params).one()
    return str(row[0] or ""), Estimate(*row[1])


def _tsquery_param(argument: str) -> ColumnElement[Any]:
    """The tsquery PostgreSQL wrote, written into the statement rather than bound.  psycopg
    prepares a statement it has run before, and PostgreSQL may then plan it once for any
    query: a plan that cannot see the query's words read every match of "python" (half a
    second at 100,000 posts, against a millisecond planned for it).  The road each list of
    candidates takes is chosen here as well, from the estimate."""
    return cast(bindparam("search_tsquery", argument, literal_execute=True), TSQUERY)


# SQLite -----------------------------------------------------------------------------------------


def _fts_match(query: Query, *, columns: str = "") -> str:
    """The query as an FTS5 expression: every piece quoted, so FTS5's syntax is never spoken.

    With ``columns`` (FTS5's ``{title tags}``), the words looked for must be in
    those columns; an excluded word is excluded from all of them alike.
    """

    def spelled(term: Term, prefix: bool = False) -> str:
        quoted = '"' + " ".join(term.pieces) + '"'
        return quoted + "*" if prefix else quoted

    parts = []
    for index, clause in enumerate(query.clauses):
        last = index == len(query.clauses) - 1 and query.prefix is not None
        parts.append("(" + " OR ".join(spelled(term, prefix=last) for term in clause) + ")")
    expression = " AND ".join(parts)
    if columns:
        expression = f"{columns} : ({expression})"
    for term in query.excluded:
        expression = f"({expression}) NOT {spelled(term)}"
    return expression


# Matching and ranking --------------------------------------------------------------------------


@dataclass(frozen=True)
class Matcher:
    """How one query narrows a select of posts, and how to rank what it finds (best first).

    ``restrict`` keeps the posts that match anywhere; ``heads`` the ones whose
    title and tags alone match; ``score`` ranks within each of the two, in a
    select that ``scored`` made (PostgreSQL: joined to the index, which the
    candidates already matched; SQLite: matched, which its ranking needs).
    """

    restrict: Callable[[Select[Any]], Select[Any]]
    heads: Callable[[Select[Any]], Select[Any]]
    scored: Callable[[Select[Any]], Select[Any]]
    score: ColumnElement[float]
    dialect: str
    argument: str  # the tsquery text, or the FTS5 expression
    estimate: Estimate | None = None  # PostgreSQL's


def _age_days(now: datetime, dialect: str, when: Any = None) -> ColumnElement[Any]:
    when = func.coalesce(Post.published_at, Post.updated_at) if when is None else when
    if dialect == "postgresql":
        return func.extract("epoch", literal(now) - when) / 86400.0
    return func.julianday(now.replace(tzinfo=None).isoformat(sep=" ")) - func.julianday(when)


def _recency(now: datetime, dialect: str, when: Any = None) -> ColumnElement[float]:
    age = _age_days(now, dialect, when)
    age = func.max(age, 0.0) if dialect == "sqlite" else func.greatest(age, 0.0)
    return cast(0.5 + 0.5 / (1.0 + age / RECENCY_DAYS), Float)


# ts_rank_cd's weights, for D, C, B, A: (unused), body, tags and excerpt, title.
_WEIGHTS_ARRAY = f"{{0.1, {WEIGHTS['body']}, {WEIGHTS['tags']}, {WEIGHTS['title']}}}"
_RANK_WEIGHTS: ColumnElement[Any] = literal_column(f"'{_WEIGHTS_ARRAY}'::float4[]")


def _rank(tsquery: ColumnElement[Any]) -> ColumnElement[float]:
    return func.ts_rank_cd(_RANK_WEIGHTS, _document, tsquery, type_=Float)


def _newest(matched: Select[Any], limit: int, *, common: bool = True) -> Select[Any]:
    """The ids of ``matched``'s newest ``limit`` posts, a select to rank among.

    A ``common`` query walks the listing index newest first and stops at
    ``limit`` matches, so a word in a third of the site costs a few hundred
    documents; a rarer one is found through the full-text index, then sorted
    (ordering by an expression no index holds keeps PostgreSQL on that road).
    """
    when = Post.published_at if common else func.coalesce(Post.published_at, Post.updated_at)
    return (
        matched.with_only_columns(Post.id)
        .order_by(None)
        .order_by(when.desc(), Post.id.desc())
        .limit(limit)
    )


def matcher(session: DbSession, query: Query, *, now: datetime) -> Matcher:
    """Narrow a ``select`` over posts to the posts matching ``query``, with a score to rank by.

    A title match outweighs a tag or excerpt match, which outweighs a body
    match; newer posts weigh a little more (never more than the place a word
    was found in).  The query must not be empty.
    """
    dialect = session.get_bind().dialect.name
    recency = _recency(now, dialect)
    if dialect == "postgresql":
        argument, estimate = _tsquery(session, query)
        tsquery = _tsquery_param(argument)

        def scored_pg(select_: Select[Any]) -> Select[Any]:
            return select_.join(_documents, _documents.c.post_id == Post.id)

        def restrict_pg(select_: Select[Any]) -> Select[Any]:
            return scored_pg(select_).where(_document.bool_op("@@")(tsquery))

        def heads_pg(select_: Select[Any]) -> Select[Any]:
            # A title or tag match is a match anywhere; but a word left out may be in the body,
            # which the small vector does not hold.  (Asking for both when neither is needed
            # misleads the planner, which takes them for independent.)
            heads = scored_pg(select_).where(_head.bool_op("@@")(tsquery))
            return heads.where(_document.bool_op("@@")(tsquery)) if query.excluded else heads

        score = _rank(tsquery) * recency
        return Matcher(restrict_pg, heads_pg, scored_pg, score, dialect, argument, estimate)
    expression = _fts_match(query)
    bm25 = func.bm25(
        literal_column("post_search"),
        WEIGHTS["title"],
        WEIGHTS["tags"],
        WEIGHTS["excerpt"],
        WEIGHTS["body"],
    )

    def restrict_fts(select_: Select[Any]) -> Select[Any]:
        return select_.join(_fts, _fts.c.rowid == Post.id).where(
            literal_column("post_search").op("MATCH")(bindparam("search_match", expression))
        )

    def heads_fts(select_: Select[Any]) -> Select[Any]:
        # FTS5's column filter: the words looked for, in the title and tags alone.
        heads = _fts_match(query, columns="{title tags}")
        return select_.join(_fts, _fts.c.rowid == Post.id).where(
            literal_column("post_search").op("MATCH")(bindparam("search_heads", heads))
        )

    return Matcher(restrict_fts, heads_fts, restrict_fts, -bm25 * recency, dialect, expression)


def ranked(
    session: DbSession,
    query: Query,
    matching: Select[Any],
    *,
    now: datetime,
    found: Matcher | None = None,
) -> Any:
    """``matching`` (a select over posts) narrowed to ``query`` and ordered best first.

    For the listings that bring their own filters and visibility (the Content
    API, the staff's post list): this brings the match and the order.  The
    candidates ranked are the newest HEAD_CANDIDATES title and tag matches and
    the newest BODY_CANDIDATES matches anywhere; a title or tag match comes
    first, whatever its age.  ``found`` is the query's ``matcher``, when the caller has it.
    """
    found = found or matcher(session, query, now=now)
    estimate = found.estimate
    common = estimate is None or estimate.walks(estimate.documents, BODY_CANDIDATES)
    heads_common = estimate is None or estimate.walks(estimate.heads, HEAD_CANDIDATES)
    heads = _newest(found.heads(matching), HEAD_CANDIDATES, common=heads_common)
    anywhere = _newest(found.restrict(matching), BODY_CANDIDATES, common=common)
    # The candidates drive the ranking select: it reads their rows by id, not every match.
    # Each list is read once; a post in both is a title or tag match.
    head_ids, anywhere_ids = heads.subquery(), anywhere.subquery()
    listed = union_all(
        select(head_ids.c.id, literal(1).label("head")),
        select(anywhere_ids.c.id, literal(0).label("head")),
    ).subquery()
    candidates = (
        select(listed.c.id, func.max(listed.c.head).label("head")).group_by(listed.c.id).subquery()
    )
    return (
        found.scored(matching)
        .join(candidates, candidates.c.id == Post.id)
        .order_by(None)
        .order_by(candidates.c.head.desc(), found.score.desc(), Post.id.desc())
    )


def _public_fts(
    session: DbSession, query: Query, *, now: datetime, number: int, per_page: int
) -> _Found:
    """The public search on SQLite: the listings' way, over the visible posts; then the page's
    cards and highlights."""
    visible = select(Post.id).where(Post.visible_clause(now, kind=None))
    found = matcher(session, query, now=now)
    ids = list(session.scalars(ranked(session, query, visible, now=now, found=found)))
    posts, marks = _shown(session, found, ids[(number - 1) * per_page : number * per_page])
    return _Found(posts, marks, len(ids))


def _capped(ranked_count: int) -> bool:
    """Whether more posts matched than were ranked.  The newest matches anywhere are all the
    matches while there are fewer than BODY_CANDIDATES of them; from there on, some were left
    out (the title and tag matches among them are ranked all the same)."""
    return ranked_count >= BODY_CANDIDATES


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
    post: PostCard
    title: Markup
    snippet: Markup


# PostgreSQL's whole public search, in one statement: the query read (``found.query``, with the
# configuration it was read with and the words looked for as the index holds them), the ids ranked
# (``broadsheet_search_ranked``, see the migration d4f8a2c6e1b3), how many, and the cards of the
# page's posts with their marked titles and snippets.  One row per post shown, in rank order; one
# row without a post when the page shows none, so the count and the query still come back.
_FOUND = """
SELECT shown.id, shown.n, CAST(r.query AS text) AS query_text, cardinality(r.ids) AS total,
       r.cfg, r.query, r.lexemes
FROM (
    SELECT q.cfg, q.query,
        broadsheet_search_ranked(q.query, :now, :heads, :bodies, :excluded,
            CAST(:weights AS float4[]), :days, :walk_ratio) AS ids,
        q.lexemes
    FROM (SELECT c.cfg, {query} AS query, tsvector_to_array(to_tsvector(c.cfg, :plain)) AS lexemes
          FROM (SELECT broadsheet_search_language() AS cfg) c) q
) r
LEFT JOIN LATERAL (
    SELECT ranked.id, ranked.n FROM unnest(r.ids) WITH ORDINALITY AS ranked(id, n)
    WHERE ranked.n > :skip ORDER BY ranked.n LIMIT :per_page
) shown ON true
"""
# The markers are taken out of the text before marks go in.  A snippet is made from the text
# around the body's first match, near enough (a lexeme is the start of the words it stands for,
# as a rule; without one, the start of the body).
_TITLE_HEADLINE = """ts_headline(found.cfg, translate(posts.title, :markers, ''), found.query,
    :title_options)"""
_BODY_HEADLINE = """ts_headline(found.cfg,
    translate(substr(posts.markdown, greatest(coalesce(
        (SELECT min(nullif(strpos(lower(posts.markdown), w), 0))
         FROM unnest(found.lexemes) AS w), 1) - :lead, 1), :source), :markers, ''),
    found.query, :body_options)"""
_MARKS = f"StartSel={START}, StopSel={STOP}"
_FRAGMENTS = f", MaxFragments=1, MinWords=15, MaxWords=35, FragmentDelimiter={BETWEEN}"


@cache
def _search_page(prefixed: bool) -> Select[Any]:
    """The statement of a public search on PostgreSQL (see _FOUND): cards but for their HTML,
    which a result never shows (and which is the largest thing in a post's row)."""
    found = (
        text(_FOUND.format(query=_PREFIXED if prefixed else _WORDS))
        .columns(column("id"), column("n"), column("query_text"), column("total"))
        .subquery("found")
    )
    columns: list[Any] = [literal("") if c is Post.html else c for c in CARD_COLUMNS]
    columns += [text(_TITLE_HEADLINE), text(_BODY_HEADLINE), found.c.query_text, found.c.total]
    return (
        select(*columns)
        .select_from(found.outerjoin(Post, Post.id == found.c.id))
        .order_by(found.c.n)
    )


@dataclass(frozen=True)
class _Found:
    """A page of a public search: its posts with their marks, how many were ranked, and
    whether the query held a word to look for (not only stop words)."""

    posts: list[PostCard]
    marks: dict[int, tuple[str, str]]
    total: int
    has_words: bool = True


def _ranking(query: Query, now: datetime) -> dict[str, Any]:
    """The parameters of ``broadsheet_search_ranked`` and of the query it is given."""
    params: dict[str, Any] = {
        "words": _websearch_text(query),
        "now": now,
        "heads": HEAD_CANDIDATES,
        "bodies": BODY_CANDIDATES,
        "excluded": bool(query.excluded),
        "weights": _WEIGHTS_ARRAY,
        "days": RECENCY_DAYS,
        "walk_ratio": WALK_RATIO,
    }
    if query.prefix is not None:
        params["prefix"] = query.prefix
    return params


def _public_pg(
    session: DbSession, query: Query, *, now: datetime, number: int, per_page: int
) -> _Found:
    """The public search on PostgreSQL, in one round trip (see _FOUND)."""
    params = _ranking(query, now) | {
        "plain": " ".join(query.words),
        "skip": max(number - 1, 0) * per_page,
        "per_page": per_page,
        "markers": START + STOP + BETWEEN,
        "title_options": _MARKS + ", HighlightAll=true",
        "body_options": _MARKS + _FRAGMENTS,
        "lead": SNIPPET_LEAD,
        "source": SNIPPET_SOURCE,
    }
    rows = session.connection().execute(_search_page(query.prefix is not None), params).all()
    posts, marks = [], {}
    for row in rows:
        if row[0] is not None:
            post = card(row)
            posts.append(post)
            marks[post.id] = (row[CARD_WIDTH], row[CARD_WIDTH + 1])
    query_text, total = rows[0][-2], rows[0][-1]
    return _Found(posts, marks, int(total or 0), has_words=bool(query_text))


# What the search page ranks, the posts of one kind only, in its order.
_RANKED_OF_KIND = """
SELECT ranked.id
FROM (SELECT {query} AS query FROM (SELECT broadsheet_search_language() AS cfg) c) q
CROSS JOIN LATERAL unnest(broadsheet_search_ranked(q.query, :now, :heads, :bodies, :excluded,
    CAST(:weights AS float4[]), :days, :walk_ratio)) WITH ORDINALITY AS ranked(id, n)
JOIN posts ON posts.id = ranked.id AND posts.kind = :kind
ORDER BY ranked.n
"""


@cache
def _ranked_of_kind(prefixed: bool) -> TextClause:
    return text(_RANKED_OF_KIND.format(query=_PREFIXED if prefixed else _WORDS))


def ranked_ids(
    session: DbSession,
    query: Query,
    matching: Select[Any],
    *,
    now: datetime,
    every_public: PostKind | None = None,
) -> list[int]:
    """The ids of ``matching`` (a select over posts) that match ``query``, best first (at most
    HEAD_CANDIDATES + BODY_CANDIDATES).

    ``every_public`` says that ``matching`` is every public post of that kind, with no other
    filter: then, on PostgreSQL, the ids are the search page's own, in one statement
    (``broadsheet_search_ranked``); otherwise they are ranked among ``matching`` (``ranked``).
    """
    if every_public is not None and session.get_bind().dialect.name == "postgresql":
        params = _ranking(query, now) | {"kind": every_public.value}
        statement = _ranked_of_kind(query.prefix is not None)
        return list(session.connection().execute(statement, params).scalars())
    return list(
        session.scalars(ranked(session, query, matching, now=now).with_only_columns(Post.id))
    )


def _highlights(
    session: DbSession, found: Matcher, ids: Sequence[int]
) -> dict[int, tuple[str, str]]:
    """The title and a snippet of the body, with marks, for the posts shown (and only those):
    SQLite's (PostgreSQL's come with the cards, ``_shown``)."""
    if not ids:
        return {}
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
    capped: bool = False  # more matched than were ranked (see HEAD_CANDIDATES)


def _shown(
    session: DbSession, found: Matcher, ids: Sequence[int]
) -> tuple[list[PostCard], dict[int, tuple[str, str]]]:
    """SQLite's cards of the posts ``ids``, in that order, and their marked titles and
    snippets (PostgreSQL's come in the search's own statement, ``_public_pg``)."""
    if not ids:
        return [], {}
    return cards_in_order(session, ids), _highlights(session, found, ids)


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
    if session.get_bind().dialect.name == "postgresql":
        shown = _public_pg(session, query, now=now, number=number, per_page=per_page)
    else:
        shown = _public_fts(session, query, now=now, number=number, per_page=per_page)
    check_page(number, shown.total, per_page)
    hits = [
        Hit(
            post,
            marked(shown.marks.get(post.id, (post.title, ""))[0]),
            marked(shown.marks.get(post.id, ("", post.excerpt))[1], markdown=True),
        )
        for post in shown.posts
    ]
    # A query of stop words alone has nothing to be close to.
    wanted = shown.total == 0 and shown.has_words
    suggestions = suggest(session, query, now=now) if wanted else []
    page = Page(shown.posts, number, per_page, shown.total)
    return Results(query, page, hits, suggestions, capped=_capped(shown.total))


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
