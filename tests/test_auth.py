"""Signing in and out, CSRF, the sign-in rate limit, cookies, and password reset by email."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.tasks import send_password_reset
from broadsheet.admin.auth import LOGIN_LIMIT_PER_ACCOUNT
from broadsheet.extensions import db, limiter
from tests.staff import PASSWORD, csrf_token, post_form, separate_client, sign_in


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return separate_client(app)


@pytest.fixture
def editor(make_user: Any) -> User:
    return make_user(Role.EDITOR, email="ed@example.com", name="Ed Itor", password=PASSWORD)


@pytest.fixture
def outbox(app: Flask) -> list[Any]:
    """The messages the in-memory mail backend has sent in this test."""
    state = app.extensions["mailman"]
    state.outbox = []
    return state.outbox  # type: ignore[no-any-return]


@pytest.fixture
def fresh_limits(app: Flask) -> Iterator[None]:
    limiter.reset()
    yield
    limiter.reset()


def test_staff_sign_in_see_the_admin_and_sign_out(client: FlaskClient, editor: User) -> None:
    assert client.get("/admin/").status_code == 302
    response = sign_in(client, "ED@example.com ")
    assert response.location == "/admin/"
    assert "Ed Itor (editor)" in client.get("/admin/").text
    post_form(client, "/admin/logout", {}, form_at="/admin/")
    assert client.get("/admin/").location.startswith("/admin/login")


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    response = post_form(client, "/admin/login", {"email": editor.email, "password": "nope" * 3})
    assert response.status_code == 401
    assert "Wrong email or password" in response.text
    response = post_form(client, "/admin/login", {"email": "who@example.com", "password": "x" * 12})
    assert response.status_code == 401


def test_sign_in_goes_back_to_the_admin_page_asked_for_but_never_off_site(
    client: FlaskClient, editor: User
) -> None:
    page = client.get("/admin/login?next=/admin/tags/")
    data = {"csrf_token": csrf_token(page.text), "email": editor.email, "password": PASSWORD}
    assert client.post("/admin/login?next=/admin/tags/", data=data).location == "/admin/tags/"
    client.get("/admin/login")  # signed in: bounced to the dashboard
    other = separate_client(client.application)
    page = other.get("/admin/login")
    data["csrf_token"] = csrf_token(page.text)
    response = other.post("/admin/login?next=https://evil.example/admin/", data=data)
    assert response.location == "/admin/"


def test_a_deactivated_account_cannot_sign_in_and_is_signed_out(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    sign_in(client, editor.email)
    editor.deactivated_at = editor.created_at
    db.session.commit()
    assert client.get("/admin/").status_code == 302
    response = post_form(client, "/admin/login", {"email": editor.email, "password": PASSWORD})
    assert response.status_code == 401


def test_a_form_without_its_csrf_token_is_rejected(client: FlaskClient, editor: User) -> None:
    response = client.post("/admin/login", data={"email": editor.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Form expired" in response.text
    sign_in(client, editor.email)
    forged = client.post("/admin/posts/new", data={"title": "Forged", "action": "save"})
    assert forged.status_code == 400
    wrong = client.post("/admin/posts/new", data={"title": "Forged", "csrf_token": "not-a-token"})
    assert wrong.status_code == 400
    assert "No posts match" in client.get("/admin/posts/").text


def test_session_cookies_are_http_only_lax_and_secure_on_an_https_site(
    client: FlaskClient, editor: User
) -> None:
    response = sign_in(client, editor.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the test site is https://blog.example.com


def _attempt(client: FlaskClient, email: str, password: str, address: str) -> int:
    page = client.get("/admin/login", environ_base={"REMOTE_ADDR": address})
    return client.post(
        "/admin/login",
        data={"csrf_token": csrf_token(page.text), "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    ).status_code


def test_guessing_one_accounts_password_is_stopped_even_from_many_addresses(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    allowed = int(LOGIN_LIMIT_PER_ACCOUNT.split()[0])
    codes = [
        _attempt(client, editor.email, f"guess {n}", f"10.0.0.{n}") for n in range(allowed + 1)
    ]
    assert codes == [401] * allowed + [429]
    # Now even the right password waits: the account is the one under attack.
    assert _attempt(client, editor.email, PASSWORD, "10.0.1.1") == 429
    # Another account is not held up.
    assert _attempt(client, "someone@example.com", "guess", "10.0.1.2") == 401


def test_one_address_trying_many_accounts_is_stopped(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    codes = [_attempt(client, f"u{n}@example.com", "guess", "10.9.9.9") for n in range(21)]
    assert codes == [401] * 20 + [429]
    assert _attempt(client, editor.email, PASSWORD, "10.9.9.10") == 302


def test_signing_in_correctly_does_not_use_up_the_limit(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    for _ in range(8):
        assert _attempt(client, editor.email, PASSWORD, "10.1.1.1") == 302
        post_form(client, "/admin/logout", {}, form_at="/admin/")


def _reset_link(outbox: list[Any]) -> str:
    message = outbox[-1]
    found = re.search(r"https://blog\.example\.com(/admin/password-reset/\S+)", message.body)
    assert found, message.body
    return found.group(1)


def test_password_reset_emails_a_link_that_works_once(
    app: Flask, client: FlaskClient, editor: User, fresh_limits: None, outbox: list[Any]
) -> None:
    other = separate_client(app)
    sign_in(other, editor.email)  # a session elsewhere, say a lost laptop
    response = post_form(client, "/admin/password-reset/", {"email": "Ed@Example.com"})
    assert response.status_code == 302
    # The email goes through the worker; here the task body runs as the worker would.
    send_password_reset.run(editor.id)
    assert outbox[-1].to == ["ed@example.com"]
    link = _reset_link(outbox)
    new = {"password": "a brand new secret", "confirm": "a brand new secret"}
    assert post_form(client, link, new).status_code == 302
    sign_in(client, editor.email, "a brand new secret")
    assert other.get("/admin/").status_code == 302  # the old session ended with the password
    spent = client.get(link)
    assert spent.status_code == 400
    assert "already been used" in spent.text


def test_password_reset_links_expire(
    app: Flask, client: FlaskClient, editor: User, outbox: list[Any]
) -> None:
    send_password_reset.run(editor.id)
    link = _reset_link(outbox)
    app.config["PASSWORD_RESET_MAX_AGE"] = -1
    try:
        response = client.get(link)
    finally:
        app.config["PASSWORD_RESET_MAX_AGE"] = 3600
    assert response.status_code == 400
    assert "expired" in response.text


def test_asking_for_a_reset_says_nothing_about_whether_the_account_exists(
    client: FlaskClient, fresh_limits: None, outbox: list[Any]
) -> None:
    response = post_form(client, "/admin/password-reset/", {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert "If that address has a staff account" in client.get("/admin/login").text
    assert outbox == []
