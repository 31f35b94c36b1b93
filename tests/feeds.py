"""Reading feeds the way a feed reader would: RSS and Atom through feedparser, JSON
Feed through its 1.1 specification written as a JSON Schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import feedparser
import jsonschema
from flask.testing import FlaskClient

# https://jsonfeed.org/version/1.1, the parts a reader relies on.
_AUTHORS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "url": {"type": "string", "format": "uri"},
            "avatar": {"type": "string", "format": "uri"},
        },
        "anyOf": [{"required": ["name"]}, {"required": ["url"]}, {"required": ["avatar"]}],
    },
}
JSON_FEED_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "title", "items"],
    "properties": {
        "version": {"const": "https://jsonfeed.org/version/1.1"},
        "title": {"type": "string"},
        "home_page_url": {"type": "string", "format": "uri"},
        "feed_url": {"type": "string", "format": "uri"},
        "description": {"type": "string"},
        "authors": _AUTHORS,
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id"],
                "anyOf": [{"required": ["content_html"]}, {"required": ["content_text"]}],
                "properties": {
                    "id": {"type": "string"},
                    "url": {"type": "string", "format": "uri"},
                    "title": {"type": "string"},
                    "content_html": {"type": "string"},
                    "content_text": {"type": "string"},
                    "summary": {"type": "string"},
                    "image": {"type": "string", "format": "uri"},
                    "date_published": {"type": "string", "format": "date-time"},
                    "date_modified": {"type": "string", "format": "date-time"},
                    "authors": _AUTHORS,
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}

FEED_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json",
}


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    link: str
    content: str
    authors: list[str]
    tags: list[str]


@dataclass(frozen=True)
class Feed:
    title: str
    link: str
    entries: list[Entry]
    body: str

    @property
    def titles(self) -> list[str]:
        return [entry.title for entry in self.entries]


def _from_json(body: str) -> Feed:
    document = json.loads(body)
    jsonschema.validate(
        document, JSON_FEED_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return Feed(
        title=document["title"],
        link=document["home_page_url"],
        entries=[
            Entry(
                id=item["id"],
                title=item["title"],
                link=item["url"],
                content=item["content_html"],
                authors=[a["name"] for a in item["authors"]],
                tags=item.get("tags", []),
            )
            for item in document["items"]
        ],
        body=body,
    )


def _from_xml(body: str, fmt: str) -> Feed:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if fmt == "rss" else "atom10")
    return Feed(
        title=parsed.feed.title,
        link=parsed.feed.link,
        entries=[
            Entry(
                id=entry.id,
                title=entry.title,
                link=entry.link,
                content=entry.content[0].value,
                authors=[a.name for a in entry.get("authors", [])],
                tags=[t.term for t in entry.get("tags", [])],
            )
            for entry in parsed.entries
        ],
        body=body,
    )


def read_feed(client: FlaskClient, url: str, fmt: str) -> Feed:
    """Fetch a feed, check its content type and its format, and read it."""
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.content_type == FEED_TYPES[fmt]
    body = response.get_data(as_text=True)
    return _from_json(body) if fmt == "json" else _from_xml(body, fmt)
