"""Search: what readers find on the site and in the Content API, and what staff find.

Every test runs on SQLite (FTS5) and PostgreSQL (tsvector), through the doors.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import text

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content import search as searching
from broadsheet.content.models import PostKind, PostStatus
from broadsheet.content.search import parse, search_public
from broadsheet.content.services import load_post, unpublish_post
from broadsheet.content.staff_queries import staff_posts
from broadsheet.content.tags import find_tag, rename_tag
from broadsheet.content.trash import move_to_trash, restore_from_trash
from broadsheet.extensions import db, utcnow
from tests.conftest import NOW
from tests.staff import PASSWORD, sign_in

DAY = timedelta(days=1)


def _titles(client: FlaskClient, query: str, *, page: int = 1) -> list[str]:
    response = client.get("/search/", query_string={"q": query, "page": page})
    assert response.status_code == 200
    found = re.findall(
        r'<h2 class="card__title"><a href="[^"]*">(.*?)</a></h2>', response.get_data(as_text=True)
    )
    return [re.sub(r"</?mark>", "", title) for title in found]


def _api_titles(client: FlaskClient, query: str) -> list[str]:
    response = client.get("/api/v1/posts/", query_string={"q": query})
    assert response.status_code == 200, response.get_json()
    return [post["title"] for post in response.get_json()["posts"]]


def test_a_title_match_ranks_above_a_newer_body_match(client: FlaskClient, make_post: Any) -> None:
    make_post("Kubernetes from scratch", markdown="Pods and nodes.", published_at=NOW - 300 * DAY)
    make_post("Gardening notes", markdown="Not about kubernetes at all.", published_at=NOW)
    assert _titles(client, "kubernetes") == ["Kubernetes from scratch", "Gardening notes"]
    assert _api_titles(client, "kubernetes") == ["Kubernetes from scratch", "Gardening notes"]


def test_an_old_title_match_ranks_above_more_newer_body_matches_than_are_ranked(
    client: FlaskClient, make_post: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A word as common as the demo's: more posts say it in their text than are ranked,
    every one of them newer than the one post with it in its title."""
    monkeypatch.setattr(searching, "HEAD_CANDIDATES", 2)
    monkeypatch.setattr(searching, "BODY_CANDIDATES", 3)
    make_post("Kubernetes from scratch", markdown="Pods and nodes.", published_at=NOW - 900 * DAY)
    for number in range(6):
        make_post(f"Notes {number}", markdown="Kubernetes again.", published_at=NOW - number * DAY)
    titles = _titles(client, "kubernetes")
    assert titles[0] == "Kubernetes from scratch"
    assert titles[1:] == ["Notes 0", "Notes 1", "Notes 2"]  # then the newest of the rest
    page = client.get("/search/?q=kubernetes").get_data(as_text=True)
    assert "More than 4 results" in page
    assert _api_titles(client, "kubernetes")[0] == "Kubernetes from scratch"


def test_the_site_and_the_api_rank_alike(client: FlaskClient, make_post: Any) -> None:
    """The search page and the API's unfiltered search take one ranking (on PostgreSQL, the
    database's; the API keeps its posts); narrowed to a tag, the API ranks within it, through
    the listing's own statements: the same posts, in the same order, page after page."""
    make_post("Kubernetes in a week", markdown="Pods.", published_at=NOW - 400 * DAY)
    make_post("Kubernetes, kubernetes", markdown="Kubernetes twice.", published_at=NOW - 9 * DAY)
    make_post("Clusters", markdown="Pods.", tags=["kubernetes"], published_at=NOW - 30 * DAY)
    for number in range(9):
        tags = ["notes"] if number % 2 else []
        make_post(
            f"Notes {number}", markdown="About kubernetes.", tags=tags,
            published_at=NOW - number * DAY,
        )  # fmt: skip
    make_post("Old notes", markdown="Kubernetes " * 30, published_at=NOW - 700 * DAY)
    make_post("About", markdown="Kubernetes, here too.", kind=PostKind.PAGE)
    site = _titles(client, "kubernetes") + _titles(client, "kubernetes", page=2)
    api = client.get("/api/v1/posts/?q=kubernetes&limit=50").get_json()
    assert len(site) == 14
    assert [title for title in site if title != "About"] == [p["title"] for p in api["posts"]]
    assert api["pagination"]["total"] == 13  # the API lists posts, not pages
    assert set(site[:3]) == {"Kubernetes in a week", "Kubernetes, kubernetes", "Clusters"}
    # Narrowed to a tag, the API ranks among that tag's posts: the same order.
    tagged = client.get("/api/v1/posts/?q=kubernetes&tag=notes").get_json()["posts"]
    assert [p["title"] for p in tagged] == [
        t for t in site if t in {"Notes 1", "Notes 3", "Notes 5", "Notes 7"}
    ]


def test_a_trashed_post_leaves_the_results_and_comes_back_when_restored(
    client: FlaskClient, make_post: Any
) -> None:
    post = make_post("Quasar watching")
    assert _titles(client, "quasar") == ["Quasar watching"]
    trashed = load_post(db.session, post.id)
    move_to_trash(db.session, trashed, actor=OPERATOR, expected_version=trashed.version, now=NOW)
    db.session.commit()
    assert _titles(client, "quasar") == []
    restore_from_trash(db.session, load_post(db.session, post.id), actor=OPERATOR, now=NOW)
    db.session.commit()
    assert _api_titles(client, "quasar") == ["Quasar watching"]


def test_the_snippet_shows_a_match_deep_in_a_long_post(client: FlaskClient, make_post: Any) -> None:
    filler = "Nothing to see in this sentence at all. " * 300
    make_post("A long read", markdown=f"{filler}\n\nAt last the zeppelin landed.")
    page = client.get("/search/", query_string={"q": "zeppelin"}).get_data(as_text=True)
    results = page[page.index('<ol class="search-results">') :]
    assert "<mark>zeppelin</mark> landed" in results


def test_phrases_or_and_excluded_words(client: FlaskClient, make_post: Any) -> None:
    make_post("One", markdown="The quick brown fox jumps.")
    make_post("Two", markdown="A brown and quick fox sleeps.")
    make_post("Three", markdown="A lazy dog.")
    assert _titles(client, '"quick brown"') == ["One"]
    assert sorted(_titles(client, "jumps OR sleeps")) == ["One", "Two"]
    assert sorted(_titles(client, "fox -jumps")) == ["Two"]
    assert sorted(_titles(client, "fox dog")) == []
    assert sorted(_api_titles(client, "lazy OR jumps")) == ["One", "Three"]


def test_stemming_and_the_last_word_as_a_prefix(client: FlaskClient, make_post: Any) -> None:
    make_post("Morning habits", markdown="I run before breakfast, every day.")
    make_post("Deployment", markdown="Containers orchestrated by Kubernetes.")
    assert _titles(client, "running") == ["Morning habits"]
    assert _titles(client, "orchestr") == ["Deployment"]
    assert _titles(client, "kuber") == ["Deployment"]


def test_pages_and_public_tags_are_found(client: FlaskClient, make_post: Any) -> None:
    make_post("About", kind=PostKind.PAGE, markdown="Written by a small team of gardeners.")
    make_post("Soil", tags=["Horticulture"], markdown="Compost.")
    assert _titles(client, "gardeners") == ["About"]
    assert _titles(client, "horticulture") == ["Soil"]


def test_invisible_posts_and_internal_tags_are_never_found(
    client: FlaskClient, make_post: Any, author: Any
) -> None:
    make_post("Draft zeppelin", status=PostStatus.DRAFT)
    make_post("Scheduled zeppelin", status=PostStatus.SCHEDULED, published_at=NOW + 3650 * DAY)
    trashed = load_post(db.session, make_post("Trashed zeppelin").id)
    move_to_trash(db.session, trashed, actor=OPERATOR, expected_version=trashed.version, now=NOW)
    make_post("Public post", tags=["#zeppelin"], markdown="Nothing to see.")
    db.session.commit()
    assert _titles(client, "zeppelin") == []
    assert _api_titles(client, "zeppelin") == []


def test_a_post_leaves_the_results_when_unpublished_and_follows_a_renamed_tag(
    client: FlaskClient, make_post: Any
) -> None:
    post = make_post("Quasar watching", tags=["Astronomy"])
    assert _titles(client, "quasar") == ["Quasar watching"]
    unpublish_post(db.session, load_post(db.session, post.id), actor=OPERATOR, now=NOW)
    db.session.commit()
    assert _titles(client, "quasar") == []

    make_post("Night sky", tags=["Astronomy"], markdown="Stars.")
    tag = next(t for t in load_post(db.session, post.id).tags)
    rename_tag(
        db.session, find_tag(db.session, tag.id, actor=OPERATOR), "Stargazing", actor=OPERATOR
    )
    db.session.commit()
    assert _titles(client, "stargazing") == ["Night sky"]
    assert _titles(client, "astronomy") == []


def test_snippets_mark_matches_and_escape_everything_else(
    client: FlaskClient, make_post: Any
) -> None:
    make_post(
        "Markup <em>trouble</em>",
        markdown="Before `<script>alert('x')</script>` the zebra & the <b>lion</b> met.",
    )
    page = client.get("/search/", query_string={"q": "zebra trouble"}).get_data(as_text=True)
    results = page[page.index('<ol class="search-results">') :]
    assert "<mark>zebra</mark>" in results
    assert "<mark>trouble</mark>" in results
    for raw in ("<script>", "<b>", "<em>"):
        assert raw not in results
    # SQLite shows the code as text; PostgreSQL's ts_headline leaves markup out of snippets.
    assert "&lt;script&gt;" in results or "alert(&#39;x&#39;)" in results
    assert "&amp;" in results


BAD_QUERIES = [
    "",
    " ",
    "a" * 1000,
    "zebra " * 300,
    "the and of",
    '"unbalanced quote',
    'zebra "',
    "OR",
    "OR OR zebra OR",
    "-zebra",
    "- -- ---",
    "'; DROP TABLE posts; --",
    "1 OR 1=1",
    "zebra:* & !lion | (x",
    "NEAR(zebra lion) zebra* ^zebra col:zebra",
    '"</mark><script>alert(1)</script><mark>"',
    "</mark><img src=x onerror=alert(1)>",
    "\u202e\u0007zebra\u0001\u0002",
    "日本語 ünïcödé zebra",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_input_gets_a_normal_page(client: FlaskClient, make_post: Any, query: str) -> None:
    make_post("Zebra crossing", markdown="A zebra and a lion.")
    response = client.get("/search/", query_string={"q": query})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>" not in page
    assert "<img src=x" not in page
    assert page.count("<mark>") == page.count("</mark>")
    api = client.get("/api/v1/posts/", query_string={"q": query})
    # A query the API cannot read is a field error, as every bad argument is here: a 422 problem.
    assert api.status_code in (200, 422)
    if api.status_code == 422:
        assert api.mimetype == "application/problem+json"


def test_a_nul_byte_is_refused_not_a_server_error(client: FlaskClient) -> None:
    assert client.get("/search/?q=zebra%00lion").status_code == 400
    response = client.get("/api/v1/posts/?q=zebra%00lion")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("query", "field"),
    [("a" * 201, "q"), ("---", "q"), ("-zebra", "q"), ("", "q")],
)
def test_the_api_answers_a_query_it_cannot_read_with_a_field_problem(
    client: FlaskClient, query: str, field: str
) -> None:
    response = client.get("/api/v1/posts/", query_string={"q": query})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in str(response.get_json())


def test_the_api_pages_a_search_by_number_not_cursor(client: FlaskClient, make_post: Any) -> None:
    for number in range(3):
        make_post(f"Zebra {number}", published_at=NOW - number * DAY)
    first = client.get("/api/v1/posts/?q=zebra&limit=2").get_json()
    assert (first["pagination"]["total"], first["pagination"]["pages"]) == (3, 2)
    second = client.get("/api/v1/posts/?q=zebra&limit=2&page=2").get_json()
    assert (len(first["posts"]), len(second["posts"])) == (2, 1)
    assert client.get("/api/v1/posts/?q=zebra&cursor=abc").status_code == 422
    assert client.get("/api/v1/posts/?q=zebra&tag=nothing").get_json()["posts"] == []


def test_the_search_page_pages_and_says_when_nothing_is_found(
    client: FlaskClient, make_post: Any, app: Any
) -> None:
    for number in range(12):
        make_post(f"Zebra number {number}", published_at=NOW - number * DAY)
    page = client.get("/search/?q=zebra").get_data(as_text=True)
    assert "12 results" in page
    assert 'rel="next"' in page
    assert client.get("/search/?q=zebra&page=2").status_code == 200
    assert client.get("/search/?q=zebra&page=9").status_code == 404
    nothing = client.get("/search/?q=zebrra").get_data(as_text=True)
    assert "Nothing found" in nothing
    assert "Did you mean" in nothing
    assert "Zebra number" in nothing


def test_the_header_has_a_search_form_that_works_without_javascript(
    client: FlaskClient, make_post: Any
) -> None:
    make_post("Zebra crossing")
    home = client.get("/").get_data(as_text=True)
    assert re.search(r'<form class="masthead__search" method="get" action="/search/"', home)
    assert 'name="q"' in home


def test_searches_are_not_kept_in_the_page_cache(client: FlaskClient, make_post: Any) -> None:
    make_post("Zebra crossing")
    for _ in range(2):
        response = client.get("/search/?q=zebra")
        assert response.headers.get("X-Cache") != "HIT"
        assert "<mark>Zebra</mark> crossing" in response.get_data(as_text=True)
    assert _titles(client, "lion") == []
    for _ in range(2):
        api = client.get("/api/v1/posts/?q=zebra")
        assert api.headers.get("X-Cache") != "HIT"


def test_staff_search_drafts_and_scheduled_posts_they_may_see(
    make_post: Any, make_user: Any, author: Any
) -> None:
    editor = make_user(Role.EDITOR)
    other = make_user(Role.AUTHOR)
    make_post("Zebra draft", status=PostStatus.DRAFT)
    make_post("Zebra plan", status=PostStatus.SCHEDULED, published_at=NOW + 30 * DAY)
    make_post("Zebra published")
    found = staff_posts(db.session, actor=editor, search="zebra", now=NOW)
    assert sorted(p.title for p in found.items) == ["Zebra draft", "Zebra plan", "Zebra published"]
    assert staff_posts(db.session, actor=other, search="zebra", now=NOW).items == []
    public = search_public(db.session, "zebra", now=utcnow(), number=1, per_page=10)
    assert [hit.post.title for hit in public.hits] == ["Zebra published"]


def test_the_admin_post_list_searches_every_word(
    client: FlaskClient, make_post: Any, make_user: Any
) -> None:
    editor = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    make_post("Untitled", status=PostStatus.DRAFT, markdown="A note on zebras.")
    sign_in(client, editor.email)
    page = client.get("/admin/posts/?q=zebra").get_data(as_text=True)
    assert "Untitled" in page


def test_reindex_rebuilds_a_lost_index(runner: FlaskCliRunner, client: Any, make_post: Any) -> None:
    make_post("Zebra crossing", tags=["Animals"])
    table = "search_documents" if db.engine.dialect.name == "postgresql" else "post_search"
    with db.engine.begin() as connection:
        connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (our table)
    assert _titles(client, "zebra") == []
    result = runner.invoke(args=["search", "reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 posts" in result.output
    assert _titles(client, "zebra") == ["Zebra crossing"]
    assert _titles(client, "animals") == ["Zebra crossing"]


def test_the_parser_reads_the_syntax_people_know() -> None:
    query = parse('flask "unit tests" -django sqlite OR postgres deploy')
    assert [[t.text for t in clause] for clause in query.clauses] == [
        ["flask"],
        ["unit tests"],
        ["sqlite", "postgres"],
        ["deploy"],
    ]
    assert [t.text for t in query.excluded] == ["django"]
    assert query.prefix == "deploy"
    for nothing in ("-only", '""', "", "!!! ---"):
        assert parse(nothing).empty
    assert parse("x" * 1000).cut


def test_site_language_simple_searches_without_stemming(
    app: Any, runner: FlaskCliRunner, client: FlaskClient, make_post: Any
) -> None:
    make_post("Morning habits", markdown="I run before breakfast.")
    app.config["SITE_LANGUAGE"] = "simple"
    try:
        assert runner.invoke(args=["search", "reindex"]).exit_code == 0
        assert _titles(client, "running breakfast") == []
        assert _titles(client, "run breakfast") == ["Morning habits"]
    finally:
        app.config["SITE_LANGUAGE"] = "english"
        assert runner.invoke(args=["search", "reindex"]).exit_code == 0
    assert _titles(client, "running breakfast") == ["Morning habits"]


def test_demo_content_is_found(runner: FlaskCliRunner, client: FlaskClient) -> None:
    """The demo's bulk load defers the index's triggers and indexes its posts once."""
    result = runner.invoke(args=["demo", "--posts", "30", "--tags", "5"])
    assert result.exit_code == 0, result.output
    assert _titles(client, "python") != []
    assert _titles(client, "colophon") == ["Colophon"]
