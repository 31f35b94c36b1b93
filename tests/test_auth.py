"""Signing in and out, CSRF, the sign-in rate limit, cookies, and password reset by email."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, Literal

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from broadsheet.accounts import services as accounts
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.tasks import send_password_reset
from broadsheet.errors import Forbidden
from broadsheet.extensions import db, limiter
from broadsheet.outbox.models import OutboxEmail
from broadsheet.settings.services import update_site_settings
from tests.conftest import NOW
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


def test_a_strangers_failures_do_not_stop_the_editor_signing_in_from_elsewhere(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    codes = [_attempt(client, editor.email, f"guess {n}", "10.6.6.6") for n in range(8)]
    free = accounts.FREE_FAILURES
    assert codes == [401] * free + [429] * (8 - free)
    # The stranger's address waits, even with the right password ...
    assert _attempt(client, editor.email, PASSWORD, "10.6.6.6") == 429
    # ... while the editor, from their own address, is not held up at all.
    assert _attempt(client, editor.email, PASSWORD, "10.0.0.1") == 302


def test_a_refused_attempt_says_how_long_to_wait(
    client: FlaskClient, editor: User, fresh_limits: None
) -> None:
    for n in range(accounts.FREE_FAILURES):
        _attempt(client, editor.email, f"guess {n}", "10.7.7.7")
    page = client.get("/admin/login", environ_base={"REMOTE_ADDR": "10.7.7.7"})
    response = client.post(
        "/admin/login",
        data={"csrf_token": csrf_token(page.text), "email": editor.email, "password": "x" * 12},
        environ_base={"REMOTE_ADDR": "10.7.7.7"},
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] in ("1", "2")
    assert "Try again in" in response.text


def test_repeated_failures_from_one_address_wait_longer_each_time(editor: User) -> None:
    at = NOW

    def attempt(password: str) -> User | None:
        user = accounts.authenticate(
            db.session, editor.email, password, address="192.0.2.9", now=at
        )
        db.session.commit()
        return user

    def wait() -> float:
        return accounts.sign_in_wait(db.session, editor.email, "192.0.2.9", now=at)

    for n in range(accounts.FREE_FAILURES):
        assert attempt(f"guess {n}") is None
    waits = []
    for _ in range(4):
        waits.append(wait())
        with pytest.raises(accounts.TooManyAttempts):
            attempt(PASSWORD)  # too soon: not even the right password is checked
        at += timedelta(seconds=waits[-1])
        assert attempt("another guess") is None
    assert waits == [2.0, 4.0, 8.0, 16.0]
    # The same person on another network, or an IPv6 neighbour outside the /64, goes in.
    assert accounts.sign_in_wait(db.session, editor.email, "192.0.2.10", now=at) == 0
    # Once the wait is over, the right password works and the slate is clean.
    at += timedelta(seconds=wait())
    assert attempt(PASSWORD) is not None
    assert wait() == 0


def test_one_ipv6_host_counts_as_its_slash_64() -> None:
    assert accounts.client_key("2001:db8:1:2::5") == accounts.client_key("2001:db8:1:2:ffff::9")
    assert accounts.client_key("2001:db8:1:3::5") != accounts.client_key("2001:db8:1:2::5")
    assert accounts.client_key("203.0.113.7") == "203.0.113.7"


class CountingHasher(PasswordHasher):
    """A real argon2 hasher that counts the password checks it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


@pytest.mark.parametrize(
    ("who", "password"),
    [
        ("nobody@example.com", "whatever it is"),  # no such account
        ("invited@example.com", "whatever it is"),  # invited, no password yet
        ("gone@example.com", PASSWORD),  # deactivated
        ("ed@example.com", "a wrong password"),
        ("ed@example.com", PASSWORD),  # the one that succeeds
    ],
)
def test_every_sign_in_checks_one_password_hash_so_timing_tells_nothing(
    make_user: Any, editor: User, who: str, password: str
) -> None:
    make_user(Role.AUTHOR, email="invited@example.com")
    gone = make_user(Role.AUTHOR, email="gone@example.com", password=PASSWORD)
    gone.deactivated_at = NOW
    db.session.commit()
    hasher = CountingHasher()
    user = accounts.authenticate(
        db.session, who, password, address="192.0.2.1", now=NOW, hasher=hasher
    )
    assert (user is not None) == (who == editor.email and password == PASSWORD)
    assert hasher.verified == 1


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


def _copy_cookies(source: FlaskClient, app: Flask) -> FlaskClient:
    """Another browser holding a copy of ``source``'s cookies, as a thief would."""
    thief = separate_client(app)
    for cookie in source._cookies.values():
        thief.set_cookie(cookie.key, cookie.value, domain=cookie.domain, path=cookie.path)
    return thief


def test_a_cookie_copied_before_sign_out_no_longer_works(
    app: Flask, client: FlaskClient, editor: User
) -> None:
    sign_in(client, editor.email)
    thief = _copy_cookies(client, app)
    assert thief.get("/admin/").status_code == 200
    post_form(client, "/admin/logout", {}, form_at="/admin/")
    assert thief.get("/admin/").location.startswith("/admin/login")
    sign_in(client, editor.email)  # signing in again works, and the copy stays dead
    assert client.get("/admin/").status_code == 200
    assert thief.get("/admin/").status_code == 302


def test_sign_out_everywhere_ends_a_members_sessions_on_every_device(
    app: Flask, client: FlaskClient, editor: User, make_user: Any
) -> None:
    make_user(Role.ADMIN, email="ada@example.com", password=PASSWORD)
    laptop, phone = separate_client(app), separate_client(app)
    sign_in(laptop, editor.email)
    sign_in(phone, editor.email)
    sign_in(client, "ada@example.com")
    page = client.get(f"/admin/staff/{editor.id}/")
    assert "Sign out everywhere" in page.text
    response = post_form(
        client, f"/admin/staff/{editor.id}/sessions", {}, form_at=f"/admin/staff/{editor.id}/"
    )
    assert response.status_code == 302
    assert laptop.get("/admin/").status_code == 302
    assert phone.get("/admin/").status_code == 302
    assert client.get("/admin/").status_code == 200  # the admin's own session goes on


def test_an_editor_cannot_sign_other_staff_out(editor: User, make_user: Any) -> None:
    admin = make_user(Role.ADMIN, email="ada@example.com", password=PASSWORD)
    with pytest.raises(Forbidden):
        accounts.end_sessions(db.session, admin, actor=editor)
    accounts.end_sessions(db.session, editor, actor=editor)  # their own: yes
    accounts.end_sessions(db.session, editor, actor=OPERATOR)


def _run_email_tasks() -> None:
    """Run the password reset task for every pending email, as the worker would."""
    ids = list(
        db.session.scalars(select(OutboxEmail.id).where(OutboxEmail.kind == "password_reset"))
    )
    send_password_reset.run(ids)


def _reset_link(outbox: list[Any]) -> str:
    message = outbox[-1]
    found = re.search(r"https://blog\.example\.com(/admin/password-reset/\S+)", message.body)
    assert found, message.body
    return found.group(1)


def test_password_reset_emails_a_link_that_works_once(
    app: Flask, client: FlaskClient, editor: User, fresh_limits: None, outbox: list[Any]
) -> None:
    update_site_settings(
        db.session, actor=OPERATOR, now=NOW, title="The Tuesday Paper", description="",
        timezone="UTC", posts_per_page=10,
    )  # fmt: skip
    db.session.commit()
    other = separate_client(app)
    sign_in(other, editor.email)  # a session elsewhere, say a lost laptop
    response = post_form(client, "/admin/password-reset/", {"email": "Ed@Example.com"})
    assert response.status_code == 302
    # The email goes through the worker; here the task body runs as the worker would.
    _run_email_tasks()
    assert outbox[-1].to == ["ed@example.com"]
    assert "reset your password at The Tuesday Paper." in outbox[-1].body  # not "Broadsheet"
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
    accounts.request_password_reset(db.session, editor.email, now=NOW)
    db.session.commit()
    _run_email_tasks()
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
