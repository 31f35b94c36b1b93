"""What staff see of the stats: the dashboard, a post's figures, charts, CSV and the Admin API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.services import create_token
from broadsheet.content.models import Post, PostStatus
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import services as newsletter
from broadsheet.newsletter.models import Delivery, DeliveryStatus, Subscriber
from broadsheet.newsletter.sending import publish_with_email
from broadsheet.newsletter.tokens import Purpose, make_token
from broadsheet.stats import rollup
from broadsheet.stats.recording import Tally, ViewKey, record_views
from tests.newsletter import make_subscriber
from tests.staff import PASSWORD, separate_client, sign_in


def _views(post: Post | None, path: str, views: int, *, referrer: str = "", days_ago: int = 0,
           visitors: int = 0) -> None:  # fmt: skip
    """Views as the counter writes them, then rolled up as the beat does."""
    minute = utcnow().replace(second=0, microsecond=0) - timedelta(days=days_ago)
    key = ViewKey(minute, path, referrer, "", post.slug if post else None)
    record_views(db.session, {key: Tally(views, {f"{path}{n}".encode() for n in range(visitors)})})
    db.session.commit()


def _roll_up() -> None:
    rollup.roll_up(db.session, now=utcnow(), retention_days=400)
    db.session.commit()


def _staff(app: Flask, make_user: Any, role: Role, email: str) -> tuple[User, FlaskClient]:
    user = make_user(role, email=email, password=PASSWORD, name=email.split("@")[0].title())
    client = separate_client(app)
    sign_in(client, email)
    return user, client


@pytest.fixture
def two_posts(make_post: Any, make_user: Any) -> tuple[Post, Post, User]:
    writer = make_user(Role.CONTRIBUTOR, email="cora@example.com", password=PASSWORD, name="Cora")
    theirs = make_post("Cora's own post", authors=[writer], tags=["Python"])
    other = make_post("Someone else's post", tags=["Flask"])
    _views(theirs, f"/{theirs.slug}/", 5, referrer="social.example", visitors=3)
    _views(other, f"/{other.slug}/", 40, referrer="news.example.org", visitors=30, days_ago=3)
    _views(None, "/", 7, visitors=2)
    _roll_up()
    return theirs, other, writer


def test_an_editor_sees_the_whole_sites_views_visitors_and_tops(
    app: Flask, make_user: Any, two_posts: tuple[Post, Post, User]
) -> None:
    _theirs, other, _writer = two_posts
    _editor, client = _staff(app, make_user, Role.EDITOR, "eda@example.com")
    page = client.get("/admin/stats/?days=7")
    assert page.status_code == 200
    html = page.text
    assert "<strong>52</strong> views" in html
    assert "<strong>35</strong> visitors" in html
    for text in ("Someone else&#39;s post", "Cora&#39;s own post", "news.example.org", "Flask"):
        assert text in html
    assert html.index("Someone else") < html.index("Cora&#39;s own post")  # most read first
    assert "Subscribers per day" in html
    assert f"/admin/stats/posts/{other.id}/?days=7" in html
    editor_page = client.get(f"/admin/posts/{other.id}/").text  # the post's own page links there
    assert f'href="/admin/stats/posts/{other.id}/">Stats</a>' in editor_page


def test_every_table_downloads_as_csv_and_charts_are_svg_images(
    app: Flask, make_user: Any, two_posts: tuple[Post, Post, User]
) -> None:
    _editor, client = _staff(app, make_user, Role.EDITOR, "eda@example.com")
    posts = client.get("/admin/stats/posts.csv?days=30")
    assert posts.mimetype == "text/csv"
    assert "attachment" in posts.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(posts.text)))
    assert rows == [["post", "views"], ["Someone else's post", "40"], ["Cora's own post", "5"]]
    daily = list(csv.reader(io.StringIO(client.get("/admin/stats/daily.csv?days=7").text)))
    assert daily[0] == ["day", "views", "visitors"]
    assert len(daily) == 8
    assert daily[-1][1:] == ["12", "5"]
    chart = client.get("/admin/stats/daily.svg?days=7")
    assert chart.mimetype == "image/svg+xml"
    assert b"<script" not in chart.data
    assert b"Views and unique visitors per day" in chart.data
    assert "script-src" not in chart.headers["Content-Security-Policy"]
    assert client.get("/admin/stats/posts.svg").status_code == 404  # a table without a chart
    assert client.get("/admin/stats/nothing.csv").status_code == 404


def test_a_contributor_sees_only_their_own_posts_figures(
    app: Flask, two_posts: tuple[Post, Post, User]
) -> None:
    theirs, other, writer = two_posts
    client = separate_client(app)
    sign_in(client, writer.email)
    html = client.get("/admin/stats/?days=30").text
    assert "<strong>5</strong> views" in html
    assert "Cora&#39;s own post" in html
    assert "social.example" in html
    for hidden in ("Someone else", "news.example.org", "visitors", "Subscribers per day"):
        assert hidden not in html
    assert client.get(f"/admin/stats/posts/{theirs.id}/").status_code == 200
    assert client.get(f"/admin/stats/posts/{other.id}/").status_code == 403
    assert client.get(f"/admin/stats/posts/{other.id}/daily.csv").status_code == 403
    assert "Someone" not in client.get("/admin/stats/posts.csv").text


@pytest.mark.parametrize("days", ["0", "365", "abc", "-7"])
def test_a_period_not_offered_is_refused(
    app: Flask, make_user: Any, client: FlaskClient, days: str
) -> None:
    editor, staff = _staff(app, make_user, Role.EDITOR, "eda@example.com")
    assert staff.get(f"/admin/stats/?days={days}").status_code == 422
    _token, secret = create_token(db.session, editor, label="stats", now=utcnow())
    db.session.commit()
    response = client.get(
        f"/api/v1/admin/stats/?days={days}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_the_admin_api_gives_the_same_figures_by_role(
    app: Flask, client: FlaskClient, make_user: Any, two_posts: tuple[Post, Post, User]
) -> None:
    theirs, other, writer = two_posts
    editor = make_user(Role.EDITOR, email="eda@example.com")
    headers = {}
    for user in (editor, writer):
        _token, secret = create_token(db.session, user, label="stats", now=utcnow())
        headers[user.email] = {"Authorization": f"Bearer {secret}"}
    db.session.commit()
    whole = client.get("/api/v1/admin/stats/?days=7", headers=headers[editor.email]).json
    assert (whole["whole_site"], whole["views"], whole["visitors"]) == (True, 52, 35)
    tables = {table["name"]: table for table in whole["tables"]}
    assert tables["posts"]["rows"] == [["Someone else's post", 40], ["Cora's own post", 5]]
    assert "subscribers" in tables
    own = client.get("/api/v1/admin/stats/", headers=headers[writer.email]).json
    assert (own["whole_site"], own["views"], own["visitors"]) == (False, 5, None)
    assert [t["name"] for t in own["tables"]] == ["daily", "posts", "tags", "referrers", "sources"]
    post = client.get(f"/api/v1/admin/stats/posts/{theirs.id}/", headers=headers[writer.email])
    assert post.json["views"] == 5
    refused = client.get(f"/api/v1/admin/stats/posts/{other.id}/", headers=headers[writer.email])
    assert refused.status_code == 403


def test_the_dashboard_shows_subscriber_growth_and_the_posts_readers_subscribed_from(
    app: Flask, make_post: Any, make_user: Any
) -> None:
    post = make_post("Worth subscribing for")
    reader = app.test_client()
    for email in ("one@example.com", "two@example.com"):
        reader.post("/subscribe/", data={"email": email, "page": f"/{post.slug}/"})
    reader.post("/subscribe/", data={"email": "three@example.com", "page": "/"})
    key = app.config["SECRET_KEY"]
    for subscriber in db.session.scalars(select(Subscriber)).all():
        token = make_token(key, Purpose.CONFIRM, subscriber.id, subscriber.email)
        newsletter.confirm(db.session, secret_key=key, token=token, now=utcnow())
    leaving = db.session.scalars(select(Subscriber).where(Subscriber.email == "two@example.com"))
    subscriber = leaving.one()
    token = make_token(key, Purpose.UNSUBSCRIBE, subscriber.id, subscriber.email)
    newsletter.unsubscribe(db.session, secret_key=key, token=token, now=utcnow())
    db.session.commit()
    _editor, client = _staff(app, make_user, Role.EDITOR, "eda@example.com")
    growth = list(csv.reader(io.StringIO(client.get("/admin/stats/subscribers.csv?days=7").text)))
    assert growth[-1] == [utcnow().date().isoformat(), "3", "1", "2"]
    signups = list(csv.reader(io.StringIO(client.get("/admin/stats/signups.csv").text)))
    assert signups == [["page", "subscribers"], ["Worth subscribing for", "2"], ["/", "1"]]
    assert f"/admin/stats/posts/{post.id}/" in client.get("/admin/stats/").text


def test_an_emailed_posts_page_shows_deliveries_failures_and_the_unsubscribes_it_caused(
    app: Flask, make_post: Any, make_user: Any
) -> None:
    owner, client = _staff(app, make_user, Role.OWNER, "olu@example.com")
    subscribers = [make_subscriber(f"r{n}@example.com") for n in range(4)]
    db.session.commit()
    post = make_post("Emailed", status=PostStatus.DRAFT, authors=[owner])
    sent_at = utcnow() - timedelta(days=2)
    publish_with_email(db.session, post, actor=owner, now=sent_at)
    db.session.commit()
    deliveries = db.session.scalars(select(Delivery).order_by(Delivery.subscriber_id)).all()
    assert len(deliveries) == 4
    for delivery, status in zip(deliveries, ["sent", "sent", "sent", "failed"], strict=True):
        delivery.status = DeliveryStatus(status)
        delivery.sent_at = sent_at if status == "sent" else None
    key = app.config["SECRET_KEY"]
    for subscriber, when in ((subscribers[0], sent_at + timedelta(hours=3)),
                             (subscribers[1], sent_at - timedelta(days=1))):  # fmt: skip
        token = make_token(key, Purpose.UNSUBSCRIBE, subscriber.id, subscriber.email)
        newsletter.unsubscribe(db.session, secret_key=key, token=token, now=when)
    db.session.commit()
    email = list(
        csv.reader(io.StringIO(client.get(f"/admin/stats/posts/{post.id}/email.csv").text))
    )
    assert email == [["recipients", "delivered", "failed", "unsubscribes"], ["4", "3", "1", "1"]]
    assert "Emailed" in client.get(f"/admin/stats/posts/{post.id}/").text
    assert datetime.now(UTC)  # the figures are read as of now
