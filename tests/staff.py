"""Signing staff in through the real login form, CSRF token and all."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PASSWORD = "correct horse battery"


class SeparateRequestsClient(FlaskClient):
    """A test client whose every request gets its own app context, as in a real server.

    The ``app`` fixture keeps one app context open for the whole test, and a
    request made inside it shares its ``g``: Flask-Login and Flask-WTF cache
    the signed-in user and the CSRF token there, so without this one request
    would see the previous one's user (or another client's).
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        with self.application.app_context():
            return super().open(*args, **kwargs)


def separate_client(app: Flask) -> FlaskClient:
    return SeparateRequestsClient(app, app.response_class, use_cookies=True)


_token = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"'
)


def csrf_token(page: str) -> str:
    found = _token.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1) or found.group(2)


def post_form(
    client: FlaskClient, url: str, data: dict[str, Any], *, form_at: str | None = None
) -> TestResponse:
    """POST ``data`` to ``url`` as a browser would: with the token of the page with the form."""
    page = client.get(form_at or url)
    return client.post(url, data={"csrf_token": csrf_token(page.text), **data})


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    response = post_form(client, "/admin/login", {"email": email, "password": password})
    assert response.status_code == 302, response.text
    return response
