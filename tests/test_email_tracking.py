"""Newsletter opens and clicks: off by default, counted once per email when on, unforgeable."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest
from flask import Flask
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token
from broadsheet.content.models import PostStatus
from broadsheet.extensions import db, utcnow
from broadsheet.newsletter import sending, tracking
from broadsheet.newsletter.models import Delivery, EmailClick, EmailOpen
from broadsheet.stats.counting import view_counter
from broadsheet.stats.models import DayViews, MinuteViews
from tests.conftest import NOW
from tests.newsletter import make_subscriber, outbox
from tests.staff import PASSWORD, separate_client, sign_in

POST = """Read [the guide](https://guide.example.org/start?x=1&y=2), [our about page](/about/),
or [write to us](mailto:hello@example.com). Jump to [the end](#end).
"""


def _html(message: Any) -> str:
    [(html, _mimetype)] = message.alternatives
    return str(html)


def _send(app: Flask, make_post: Any, readers: int = 1) -> tuple[Any, list[Any]]:
    for n in range(readers):
        make_subscriber(f"reader{n}@example.com")
    post = make_post("Links inside", status=PostStatus.DRAFT, markdown=POST)
    sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    messages = sorted(outbox(app), key=lambda message: message.to[0])
    assert len(messages) == readers
    return post, messages


def _links(html: str) -> list[str]:
    return [str(a.get("href")) for a in lxml.html.fromstring(html).iter("a")]


def _track(monkeypatch: pytest.MonkeyPatch, app: Flask, opens: bool, clicks: bool) -> None:
    monkeypatch.setitem(app.config, "STATS_EMAIL_OPENS", opens)
    monkeypatch.setitem(app.config, "STATS_EMAIL_CLICKS", clicks)


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_tracking_is_off_by_default_and_the_email_has_no_pixel_and_no_rewritten_links(
    eager_app: Flask, make_post: Any
) -> None:
    assert eager_app.config["STATS_EMAIL_OPENS"] is False
    assert eager_app.config["STATS_EMAIL_CLICKS"] is False
    post, [message] = _send(eager_app, make_post)
    html = _html(message)
    assert "/email/" not in html
    assert "/email/" not in message.body
    assert not [img for img in lxml.html.fromstring(html).iter("img") if img.get("width") == "1"]
    links = _links(html)
    assert "https://guide.example.org/start?x=1&y=2" in links
    assert f"https://blog.example.com/{post.slug}/" in links
    assert "mailto:hello@example.com" in links


def test_the_pixel_counts_one_open_per_email_and_is_never_cached_or_a_page_view(
    eager_app: Flask, make_post: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _track(monkeypatch, eager_app, opens=True, clicks=False)
    _post, messages = _send(eager_app, make_post, readers=2)
    pixels = []
    for message in messages:
        [pixel] = [
            img.get("src")
            for img in lxml.html.fromstring(_html(message)).iter("img")
            if "/email/open/" in (img.get("src") or "")
        ]
        pixels.append(pixel)
        assert "/email/click/" not in _html(message)  # clicks stay off
        assert "/email/open/" not in message.body  # the text part has no image, and no trace
    assert pixels[0] != pixels[1]
    reader = eager_app.test_client()
    for _ in range(3):
        answer = reader.get(_local(pixels[0]), headers={"User-Agent": "Mozilla/5.0 Mail"})
        assert answer.status_code == 200
        assert answer.mimetype == "image/gif"
        assert answer.data.startswith(b"GIF89a")
        assert "no-store" in answer.headers["Cache-Control"]
    opens = db.session.scalars(select(EmailOpen)).all()
    assert len(opens) == 1
    first = db.session.scalars(select(Delivery).order_by(Delivery.subscriber_id)).first()
    assert first is not None
    assert opens[0].delivery_id == first.id
    reader.get(_local(pixels[1]))
    assert db.session.scalar(select(func.count()).select_from(EmailOpen)) == 2
    assert view_counter(eager_app).flush() == 0  # not a page view
    assert db.session.scalar(select(func.count()).select_from(MinuteViews)) == 0
    assert db.session.scalar(select(func.count()).select_from(DayViews)) == 0


def test_a_click_redirects_to_the_target_and_is_counted(
    eager_app: Flask, make_post: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _track(monkeypatch, eager_app, opens=False, clicks=True)
    post, [message] = _send(eager_app, make_post)
    html = _html(message)
    assert "/email/open/" not in html  # opens stay off
    links = _links(html)
    assert "mailto:hello@example.com" in links
    assert f"https://blog.example.com/{post.slug}/#end" in links  # a place in the email itself
    assert "https://guide.example.org/start?x=1&y=2" not in links
    tracked = [link for link in links if "/email/click/" in link]
    assert len(tracked) == 4  # the guide, the about page, the title and "read it on the site"
    assert all(link in message.body for link in tracked)  # the text part's footnotes too
    reader = eager_app.test_client()
    targets = []
    for link in tracked:
        answer = reader.get(_local(link))
        assert answer.status_code == 302
        assert "no-store" in answer.headers["Cache-Control"]
        targets.append(answer.headers["Location"])
    assert targets == [
        f"https://blog.example.com/{post.slug}/",
        "https://guide.example.org/start?x=1&y=2",
        "https://blog.example.com/about/",
        f"https://blog.example.com/{post.slug}/",
    ]
    reader.get(_local(tracked[1]))  # the guide again
    clicks = {row.url: row.clicks for row in db.session.scalars(select(EmailClick))}
    assert clicks == {
        f"https://blog.example.com/{post.slug}/": 2,
        "https://guide.example.org/start?x=1&y=2": 2,
        "https://blog.example.com/about/": 1,
    }
    assert view_counter(eager_app).flush() == 0  # the redirects are no page views
    assert reader.get(f"/{post.slug}/").status_code == 200
    assert view_counter(eager_app).flush() == 1  # while the post's page is one


def test_a_forged_or_altered_link_is_refused_and_counts_nothing(
    eager_app: Flask, make_post: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _track(monkeypatch, eager_app, opens=True, clicks=True)
    _post, [message] = _send(eager_app, make_post)
    delivery = db.session.scalars(select(Delivery)).one()
    reader = eager_app.test_client()
    key = eager_app.config["SECRET_KEY"]
    [guide] = [link for link in _links(_html(message)) if "/email/click/" in link][1:2]
    token = _local(guide).rsplit("/", 1)[1]
    assert tracking.read_click(key, token) == (
        delivery.id,
        "https://guide.example.org/start?x=1&y=2",
    )
    payload, signature = token.rsplit(".", 1)
    # The open redirect: the same delivery, another target, signed with another key or not at all.
    attempts = [
        URLSafeSerializer("not the key", salt=tracking.CLICK_SALT).dumps(
            [delivery.id, "https://evil.example.net/"]
        ),
        f"{URLSafeSerializer(key).dump_payload([delivery.id, 'https://evil.example.net/']).decode()}"
        f".{signature}",
        f"{payload}x.{signature}",
        # A signed open token is no click token (its own salt).
        tracking.open_token(key, delivery.id),
        "nonsense",
    ]
    for forged in attempts:
        answer = reader.get(f"/email/click/{forged}")
        assert answer.status_code == 404
        assert "evil.example.net" not in answer.headers.get("Location", "")
    for forged in (
        URLSafeSerializer("not the key", salt=tracking.OPEN_SALT).dumps(delivery.id),
        tracking.click_token(key, delivery.id, "https://guide.example.org/"),
        "nonsense",
    ):
        assert reader.get(f"/email/open/{forged}.gif").status_code == 404
    # A signed link to something that is not a web address is refused too.
    javascript = tracking.click_token(key, delivery.id, "javascript:alert(1)")
    assert reader.get(f"/email/click/{javascript}").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(EmailClick)) == 0
    assert db.session.scalar(select(func.count()).select_from(EmailOpen)) == 0


def test_with_the_settings_off_again_old_links_still_work_and_count_nothing(
    eager_app: Flask, make_post: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _track(monkeypatch, eager_app, opens=True, clicks=True)
    _post, [message] = _send(eager_app, make_post)
    _track(monkeypatch, eager_app, opens=False, clicks=False)
    html = _html(message)
    pixel = re.search(r'src="([^"]*/email/open/[^"]*)"', html)
    assert pixel is not None
    reader = eager_app.test_client()
    assert reader.get(_local(pixel.group(1))).status_code == 200
    guide = [link for link in _links(html) if "/email/click/" in link][1]
    answer = reader.get(_local(guide))
    assert answer.headers["Location"] == "https://guide.example.org/start?x=1&y=2"
    assert db.session.scalar(select(func.count()).select_from(EmailClick)) == 0
    assert db.session.scalar(select(func.count()).select_from(EmailOpen)) == 0


def test_the_post_stats_page_and_the_api_show_opens_and_clicks_per_link(
    eager_app: Flask, make_post: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _track(monkeypatch, eager_app, opens=True, clicks=True)
    post, messages = _send(eager_app, make_post, readers=3)
    reader = eager_app.test_client()
    for n, message in enumerate(messages):
        html = _html(message)
        pixel = re.search(r'src="([^"]*/email/open/[^"]*)"', html)
        assert pixel is not None
        if n < 2:
            reader.get(_local(pixel.group(1)))
            reader.get(_local(pixel.group(1)))
        guide = [link for link in _links(html) if "/email/click/" in link][1]
        for _ in range(n + 1):  # reader 0 once, reader 1 twice, reader 2 three times
            reader.get(_local(guide))
    writer = make_user(Role.CONTRIBUTOR, email="cora@example.com", password=PASSWORD)
    editor = make_user(Role.EDITOR, email="eda@example.com", password=PASSWORD)
    db.session.commit()
    client = separate_client(eager_app)
    sign_in(client, editor.email)
    page = client.get(f"/admin/stats/posts/{post.id}/")
    assert page.status_code == 200
    assert "<strong>2</strong> unique opens" in page.text
    assert "inflate" in page.text or "count as opens" in page.text
    assert "https://guide.example.org/start?x=1&amp;y=2" in page.text
    email = list(
        csv.reader(io.StringIO(client.get(f"/admin/stats/posts/{post.id}/email.csv").text))
    )
    assert email == [
        ["recipients", "delivered", "failed", "unsubscribes", "unique opens"],
        ["3", "3", "0", "0", "2"],
    ]
    links = list(
        csv.reader(io.StringIO(client.get(f"/admin/stats/posts/{post.id}/links.csv").text))
    )
    assert links == [
        ["link", "readers", "clicks"],
        ["https://guide.example.org/start?x=1&y=2", "3", "6"],
    ]
    _token, secret = create_token(db.session, editor, label="stats", now=utcnow())
    db.session.commit()
    api = reader.get(
        f"/api/v1/admin/stats/posts/{post.id}/", headers={"Authorization": f"Bearer {secret}"}
    ).json
    tables = {table["name"]: table for table in api["tables"]}
    assert tables["email"]["rows"] == [[3, 3, 0, 0, 2]]
    assert tables["links"]["rows"] == [["https://guide.example.org/start?x=1&y=2", 3, 6]]
    # A contributor sees none of another's post.
    other = separate_client(eager_app)
    sign_in(other, writer.email)
    assert other.get(f"/admin/stats/posts/{post.id}/").status_code == 403
    # Off again: the page says opens and clicks are not tracked, and shows neither.
    _track(monkeypatch, eager_app, opens=False, clicks=False)
    page = client.get(f"/admin/stats/posts/{post.id}/").text
    assert "unique opens" not in page
    assert "Opens are not tracked" in page
    assert client.get(f"/admin/stats/posts/{post.id}/links.csv").status_code == 404
