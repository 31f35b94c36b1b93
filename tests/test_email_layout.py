"""Every email looks right in a real mail client, and its text part keeps the post's shape."""

from __future__ import annotations

import re
from typing import Any

import lxml.html
from flask import Flask
from sqlalchemy import select

from broadsheet.accounts import services as accounts
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.tasks import compose_password_reset
from broadsheet.content.models import PostStatus
from broadsheet.extensions import db
from broadsheet.newsletter import sending
from broadsheet.newsletter.emails import subscriber_note
from broadsheet.outbox.models import OutboxEmail
from tests.conftest import NOW
from tests.mail_client import mail_client_problems, style_of
from tests.newsletter import make_subscriber, outbox

POST = """Intro with a [link home](/) and ![a picture](/media/cat.png).

## What you get

- Weekly at most
- Unsubscribe in one click

| Plan | Price |
|------|-------|
| Free | 0 EUR |
| Paid | 5 EUR |

```python
def greet(name):
    return f"Hello, {name}"
```

See [the footnote](#details).
"""


def _html(message: Any) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return str(html)


def _post_email(eager_app: Flask, make_post: Any) -> Any:
    make_subscriber("reader@example.com")
    post = make_post("Plans and prices", status=PostStatus.DRAFT, markdown=POST)
    sending.publish_with_email(db.session, post, actor=OPERATOR, now=NOW)
    db.session.commit()
    [message] = outbox(eager_app)
    return message


def test_the_newsletter_html_obeys_a_mail_clients_rules(eager_app: Flask, make_post: Any) -> None:
    html = _html(_post_email(eager_app, make_post))
    assert mail_client_problems(html) == []
    tree = lxml.html.document_fromstring(html)
    assert 'href="https://blog.example.com/"' in html
    assert 'src="https://blog.example.com/media/cat.png"' in html
    assert 'href="https://blog.example.com/plans-and-prices/#details"' in html
    [heading] = tree.xpath("//h2")
    assert heading.text_content().strip() == "What you get"
    [pre] = tree.iter("pre")
    assert "monospace" in style_of(pre)["font-family"]
    assert style_of(pre)["white-space"] == "pre-wrap"
    keyword = pre.xpath(".//span[@class='k']")[0]
    assert style_of(keyword).get("color"), "Pygments' colours are inlined"
    cell = tree.xpath("//td")[0]
    assert "solid" in style_of(cell)["border"]


def test_the_newsletter_text_keeps_headings_lists_tables_code_and_links(
    eager_app: Flask, make_post: Any
) -> None:
    text = _post_email(eager_app, make_post).body
    lines = text.splitlines()
    assert "What you get" in lines
    assert "#" not in text.split("Links:")[0].replace("#details", "")
    assert any(line.strip().endswith("Weekly at most") for line in lines)
    assert any(line.strip().endswith("Unsubscribe in one click") for line in lines)
    assert "Weekly at most Unsubscribe" not in text
    assert any(re.search(r"Free\s*\|\s*0 EUR", line) for line in lines), text
    assert any(re.search(r"Paid\s*\|\s*5 EUR", line) for line in lines), text
    assert "def greet(name):" in lines
    assert '    return f"Hello, {name}"' in lines
    assert re.search(r"link home \[(\d+)\]", text)
    number = re.search(r"link home \[(\d+)\]", text).group(1)  # type: ignore[union-attr]
    assert f"[{number}] https://blog.example.com/" in lines
    assert re.search(r"^\[\d+\] https://blog\.example\.com/unsubscribe/\S+$", text, re.M)


def test_confirmation_and_already_subscribed_notes_share_the_layout(app: Flask) -> None:
    subscriber = make_subscriber("new@example.com")
    for kind in ("confirm", "already"):
        message = subscriber_note(app.config, db.session, subscriber.id, subscriber.email, kind)
        assert mail_client_problems(_html(message)) == [], kind
        assert "https://blog.example.com/" in message.body


def test_the_password_reset_email_shares_the_layout(app: Flask, make_user: Any) -> None:
    user: User = make_user(Role.EDITOR, email="ed@example.com", password="correct horse battery")
    accounts.request_password_reset(db.session, user.email, now=NOW)
    db.session.commit()
    row = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "password_reset"))
    assert row is not None
    message = compose_password_reset(row)
    assert message is not None
    assert mail_client_problems(_html(message)) == []
    assert re.search(r"https://blog\.example\.com/admin/password-reset/\S+", message.body)
