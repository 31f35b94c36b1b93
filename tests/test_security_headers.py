"""Security headers on every response (cached pages too), templates with no inline script,
and absolute URLs that a forged X-Forwarded-Host cannot change."""

from __future__ import annotations

import sqlite3
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from broadsheet import create_app
from broadsheet.accounts.models import Role
from broadsheet.extensions import db
from tests.conftest import base_config
from tests.staff import PASSWORD, post_form, separate_client, sign_in

SOURCE = Path(__file__).resolve().parent.parent / "src" / "broadsheet"


SAFE_REFERRER_POLICIES = ("strict-origin-when-cross-origin", "same-origin", "no-referrer")


def policy(response: Any) -> dict[str, str]:
    """The Content-Security-Policy as {directive: sources}."""
    directives = (part.strip() for part in response.headers["Content-Security-Policy"].split(";"))
    return {name: rest for name, _, rest in (d.partition(" ") for d in directives if d)}


def assert_protected(response: Any, url: str) -> None:
    csp = policy(response)
    assert csp["script-src"] == "'self'", url
    assert csp["default-src"] == "'self'", url
    assert csp["object-src"] == "'none'", url
    assert csp["frame-ancestors"] == "'none'", url
    assert response.headers["X-Frame-Options"] == "DENY", url
    assert response.headers["X-Content-Type-Options"] == "nosniff", url
    # The admin sends none to other sites; the newsletter's pages (tokens) none at all.
    assert response.headers["Referrer-Policy"] in SAFE_REFERRER_POLICIES, url
    # base_config's SITE_URL is https.
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000", url


URLS = [
    "/",
    "/post-1/",
    "/tag/flask/",
    "/feed/",
    "/sitemap.xml",
    "/subscribe/",
    "/unsubscribe/not-a-token",
    "/admin/login",
    "/api/v1/posts/",
    "/api/openapi.json",
    "/api/docs",
    "/no-such-page/",
    "/healthz",
]


@pytest.mark.parametrize("url", URLS)
def test_every_response_carries_the_security_headers(
    client: FlaskClient, make_post: Any, url: str
) -> None:
    make_post("Post 1", tags=["Flask"])
    first = client.get(url)
    assert first.status_code < 500, url
    assert_protected(first, url)
    again = client.get(url)  # public pages come from the page cache the second time
    assert_protected(again, url)


def test_a_page_served_from_the_cache_carries_the_headers(
    client: FlaskClient, make_post: Any
) -> None:
    make_post("Post 1", tags=["Flask"])
    assert client.get("/").headers["X-Cache"] == "MISS"
    hit = client.get("/")
    assert hit.headers["X-Cache"] == "HIT"
    assert_protected(hit, "/")
    # Each header once: the stored page does not carry them into the answer a second time.
    assert len(hit.headers.getlist("Content-Security-Policy")) == 1
    assert len(hit.headers.getlist("X-Frame-Options")) == 1


def test_admin_pages_for_staff_carry_them(app: Flask, make_user: Any) -> None:
    make_user(Role.ADMIN, email="ed@example.com", password=PASSWORD)
    client = separate_client(app)
    sign_in(client, "ed@example.com")
    for url in ("/admin/", "/admin/posts/new", "/admin/subscribers/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_protected(response, url)


def test_the_editors_preview_may_be_framed_by_the_site_only(app: Flask, make_user: Any) -> None:
    make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    client = separate_client(app)
    sign_in(client, "ed@example.com")
    data = {"title": "Framed", "markdown": "Hello"}
    response = post_form(client, "/admin/preview", data, form_at="/admin/posts/new")
    assert response.status_code == 200
    assert "Hello" in response.text
    assert policy(response)["frame-ancestors"] == "'self'"
    assert policy(response)["script-src"] == "'self'"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


def test_no_hsts_when_the_site_is_served_over_plain_http(tmp_path: Path) -> None:
    database = tmp_path / "site.db"
    sqlite3.connect(database).close()
    app = create_app(
        base_config(tmp_path / "instance", f"sqlite:///{database}", SITE_URL="http://127.0.0.1")
    )
    response = app.test_client().get("/healthz")
    assert "Strict-Transport-Security" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"


class _InlineScripts(HTMLParser):
    """Inline scripts and event-handler attributes: what a strict CSP refuses to run."""

    DATA_TYPES = ("application/ld+json", "application/json")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        self.found += [f"{name}= on <{tag}>" for name, _ in attrs if name.startswith("on")]
        if tag == "script" and "src" not in named and named.get("type") not in self.DATA_TYPES:
            self.found.append("inline <script>")
        for name in ("href", "src", "action", "formaction"):
            if (named.get(name) or "").strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL in {name}")


def test_no_template_carries_inline_script() -> None:
    templates = sorted(SOURCE.glob("**/templates/**/*.html"))
    assert len(templates) > 20
    problems = []
    for template in templates:
        finder = _InlineScripts()
        finder.feed(template.read_text())
        problems += [f"{template.relative_to(SOURCE)}: {what}" for what in finder.found]
    assert problems == []


# Absolute URLs come from SITE_URL ------------------------------------------------------------

FORGED = {
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
}


@pytest.fixture
def proxied(app: Flask, database_url: str, tmp_path: Path) -> Any:
    """An app behind one proxy (PROXY_HOPS=1, as on Heroku), over the test database."""
    behind = create_app(base_config(tmp_path / "instance", database_url, PROXY_HOPS="1"))
    yield behind.test_client()
    with behind.app_context():
        db.engine.dispose()


def test_a_forged_forwarded_host_reaches_no_link(proxied: FlaskClient, make_post: Any) -> None:
    for number in range(3):
        make_post(f"Post {number}", tags=["Flask"])
    db.session.remove()
    listing = proxied.get("/api/v1/posts/?limit=1", headers=FORGED)
    assert listing.status_code == 200
    assert listing.headers["Link"].startswith("<https://blog.example.com/api/v1/posts/?")
    for url in ("/api/v1/posts/?limit=1", "/", "/post-0/", "/feed/", "/sitemap.xml"):
        for _ in range(2):  # built, then from the page cache
            response = proxied.get(url, headers=FORGED)
            assert response.status_code == 200, url
            shown = response.get_data(as_text=True) + str(response.headers)
            assert "evil.example" not in shown, url
