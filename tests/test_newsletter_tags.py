"""The tags a reader can tick when subscribing or changing preferences, on a site with many."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient

from broadsheet.content.models import PostStatus
from broadsheet.content.services import find_or_create_tags
from broadsheet.extensions import db
from broadsheet.newsletter.services import OFFERED_TAGS
from broadsheet.newsletter.tokens import Purpose, make_token
from tests.conftest import NOW, QueryCounter
from tests.newsletter import make_subscriber

SECRET = "test-secret-key-0123456789"
TOPICS = 36  # "Topic NN" is on NN public posts
MOST_USED = [f"topic-{n:02d}" for n in range(TOPICS, TOPICS - OFFERED_TAGS, -1)]


@pytest.fixture
def forty_tags(app: Flask, make_post: Any) -> None:
    """36 topics used 1 to 36 times, an internal tag on every post, and three unused tags."""
    for number in range(1, TOPICS + 1):
        topics = [f"Topic {n:02d}" for n in range(number, TOPICS + 1)]
        make_post(f"Post {number}", tags=[*topics, "#pick"])
    make_post("Unfinished", tags=["Drafty"], status=PostStatus.DRAFT)
    make_post(
        "Next decade",
        tags=["Someday"],
        status=PostStatus.SCHEDULED,
        published_at=NOW + timedelta(days=3650),
    )
    find_or_create_tags(db.session, ["Unused"], now=NOW)
    db.session.commit()


def offered(html: str) -> list[tuple[str, bool]]:
    """The tag checkboxes of a page, in order: (slug, ticked)."""
    page = lxml.html.fromstring(html)
    return [
        (box.get("value"), box.checked)
        for box in page.xpath("//main//form//input[@type='checkbox' and @name='tags']")
    ]


def preferences_path(email: str, tags: list[str]) -> str:
    subscriber = make_subscriber(email, tags=tags)
    return f"/preferences/{make_token(SECRET, Purpose.PREFERENCES, subscriber.id, email)}"


@pytest.mark.usefixtures("forty_tags")
def test_the_form_offers_the_most_used_tags_most_used_first(client: FlaskClient) -> None:
    response = client.get("/subscribe/")
    assert response.status_code == 200
    assert offered(response.text) == [(slug, False) for slug in MOST_USED]
    page = lxml.html.fromstring(response.text)
    first = page.xpath("//main//form//label[input[@name='tags']]")[0]
    assert " ".join(first.text_content().split()) == "Topic 36 (36 posts)"
    for unused in ("topic-01", "drafty", "someday", "unused", "pick"):
        assert unused not in response.text, unused
    assert "most used tags" in response.text  # says where the others are


@pytest.mark.usefixtures("forty_tags")
def test_a_link_from_a_tag_page_offers_that_tag_ticked(client: FlaskClient) -> None:
    archive = lxml.html.fromstring(client.get("/tag/topic-02/").text)
    link = "//main//a[normalize-space()='Get posts tagged Topic 02 by email']/@href"
    [href] = archive.xpath(link)
    assert href == "/subscribe/?tag=topic-02"
    boxes = offered(client.get(href).text)
    assert boxes == [("topic-02", True), *((slug, False) for slug in MOST_USED)]
    assert ("topic-20", True) in offered(client.get("/subscribe/?tag=topic-20").text)


@pytest.mark.parametrize("slug", ["hash-pick", "no-such-tag", "", "TOPIC-02", "x" * 300])
@pytest.mark.usefixtures("forty_tags")
def test_an_internal_or_unknown_tag_in_the_link_is_ignored(client: FlaskClient, slug: str) -> None:
    response = client.get(f"/subscribe/?tag={slug}")
    assert response.status_code == 200
    assert offered(response.text) == [(slug, False) for slug in MOST_USED]
    assert "pick" not in response.text


@pytest.mark.usefixtures("forty_tags")
def test_a_tag_the_reader_chose_stays_ticked_on_the_preferences_page(client: FlaskClient) -> None:
    path = preferences_path("picky@example.com", ["Topic 01", "Topic 20", "Unused"])
    boxes = offered(client.get(path).text)
    assert boxes[:2] == [("topic-01", True), ("unused", True)]  # outside the most used: first
    assert boxes[2:] == [(slug, slug == "topic-20") for slug in MOST_USED]

    saved = client.post(path, data={"tags": ["topic-02"]})
    assert saved.status_code == 200
    assert offered(saved.text) == [("topic-02", True), *((slug, False) for slug in MOST_USED)]


@pytest.mark.usefixtures("forty_tags")
def test_a_refused_form_keeps_the_tags_the_reader_ticked(eager_app: Flask) -> None:
    client = eager_app.test_client()
    bad_address = client.post("/subscribe/", data={"email": "nope", "tags": ["topic-03"]})
    assert bad_address.status_code == 422
    assert ("topic-03", True) in offered(bad_address.text)

    unknown = client.post(
        "/subscribe/", data={"email": "r@example.com", "tags": ["topic-03", "no-such-tag"]}
    )
    assert unknown.status_code == 422
    assert "there is no tag &#39;no-such-tag&#39;" in unknown.text
    assert offered(unknown.text)[0] == ("topic-03", True)

    path = preferences_path("picky@example.com", [])
    refused = client.post(path, data={"tags": ["topic-04", "no-such-tag"]})
    assert refused.status_code == 422
    assert offered(refused.text)[0] == ("topic-04", True)


def test_a_site_whose_tags_have_no_public_post_offers_none(client: FlaskClient) -> None:
    find_or_create_tags(db.session, ["Lonely"], now=NOW)
    db.session.commit()
    response = client.get("/subscribe/?tag=lonely")
    assert offered(response.text) == [("lonely", True)]  # asked for by name, so still offered
    assert offered(client.get("/subscribe/").text) == []
    path = preferences_path("all@example.com", [])
    assert "you get every post" in client.get(path).text


@pytest.mark.usefixtures("forty_tags")
def test_the_forms_cost_the_same_queries_however_many_tags(
    client: FlaskClient, make_post: Any, count_queries: QueryCounter
) -> None:
    path = preferences_path("picky@example.com", ["Topic 01", "Topic 30"])

    def queries() -> list[int]:
        counts = []
        for url in ("/subscribe/", "/subscribe/?tag=topic-02", path):
            client.get(url)  # the first request of a page may warm a cache
            before = len(count_queries)
            assert client.get(url).status_code == 200
            counts.append(len(count_queries) - before)
        return counts

    with_forty = queries()
    make_post("Everything", tags=[f"Extra {n:03d}" for n in range(200)])
    assert queries() == with_forty


@pytest.mark.usefixtures("forty_tags")
def test_the_ranking_is_counted_once_until_a_post_changes_it(
    client: FlaskClient, make_post: Any, count_queries: QueryCounter
) -> None:
    def counting_queries(url: str) -> int:
        before = len(count_queries)
        assert client.get(url).status_code == 200
        return sum("count(" in sql.lower() for sql in count_queries.statements[before:])

    assert counting_queries("/subscribe/") == 1
    assert counting_queries("/subscribe/") == 0  # kept for the content as it stands
    assert counting_queries("/subscribe/?tag=topic-20") == 0  # one of the most used

    for number in range(40):  # a new topic overtakes every other one
        make_post(f"Fresh {number}", tags=["Fresh"])
    assert counting_queries("/subscribe/") == 1
    assert offered(client.get("/subscribe/").text)[0] == ("fresh", False)
