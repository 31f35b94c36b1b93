"""The emails subscribers receive: the newsletter itself, and the confirmation notes.

Each newsletter email is rendered from the post for one subscriber, with
that subscriber's own unsubscribe and preferences links, an HTML and a
plain-text part, one-click unsubscribe headers (RFC 8058) and a Message-ID
that is the same every time the same post goes to the same subscriber, so
that a duplicate after a crash is recognisable as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import make_msgid, parseaddr
from typing import Any
from urllib.parse import quote, urlsplit

from flask_mailman import EmailMultiAlternatives
from markupsafe import Markup

from broadsheet.content.models import Post, with_links
from broadsheet.extensions import DbSession
from broadsheet.mail_layout import html_email, render_email
from broadsheet.media.rendering import responsive_html
from broadsheet.media.storage import current_store
from broadsheet.newsletter import tracking
from broadsheet.newsletter.tokens import Purpose, make_token
from broadsheet.settings.services import site_settings
from broadsheet.urls import absolute_url

PREVIEW_TOKEN = "preview"  # noqa: S105 (not a secret: the token no subscriber has)


def site_host(site_url: str) -> str:
    return urlsplit(site_url).hostname or "localhost"


def message_id(post_id: int, subscriber_id: int, site_url: str) -> str:
    """The Message-ID of ``post`` sent to ``subscriber``: stable, so a resend is recognisable."""
    return f"<post-{post_id}.sub-{subscriber_id}@{site_host(site_url)}>"


@dataclass(frozen=True)
class Links:
    unsubscribe: str
    preferences: str
    mailto: str


def subscriber_links(config: Mapping[str, Any], subscriber_id: int, email: str) -> Links:
    secret = config["SECRET_KEY"]
    unsubscribe = make_token(secret, Purpose.UNSUBSCRIBE, subscriber_id, email)
    preferences = make_token(secret, Purpose.PREFERENCES, subscriber_id, email)
    sender = parseaddr(config["MAIL_DEFAULT_SENDER"])[1]
    return Links(
        unsubscribe=absolute_url("newsletter.unsubscribe", token=unsubscribe),
        preferences=absolute_url("newsletter.preferences", token=preferences),
        mailto=f"mailto:{sender}?subject={quote('unsubscribe ' + unsubscribe)}",
    )


@dataclass(frozen=True)
class PostCopy:
    """What an email shows of a post, copied out of the session (commits expire the row)."""

    id: int
    title: str
    excerpt: str


class NewsletterComposer:
    """Renders one post for many subscribers: the post once, the links per subscriber."""

    def __init__(self, session: DbSession, post_id: int, config: Mapping[str, Any]) -> None:
        from sqlalchemy import select

        post = session.scalar(select(Post).where(Post.id == post_id).options(*with_links()))
        if post is None:
            raise LookupError(f"post {post_id} is gone")
        self.post = PostCopy(post.id, post.title, post.excerpt)
        self.config = config
        self.site_title = site_settings(session, config).title
        self.post_url = absolute_url("site.post", slug=post.slug)
        # Images: absolute addresses of variants no wider than an email shows comfortably.
        self.body_html = responsive_html(
            session, post.html, store=current_store(), email_base=config["SITE_URL"]
        )

    def compose(
        self, subscriber_id: int, email: str, delivery_id: int | None = None
    ) -> EmailMultiAlternatives:
        """The email for one subscriber; with ``delivery_id``, tracked as the settings ask."""
        links = subscriber_links(self.config, subscriber_id, email)
        msgid = message_id(self.post.id, subscriber_id, self.config["SITE_URL"])
        if delivery_id is None:
            return self._message(email, links, msgid)
        return self._message(email, links, msgid, tracking=self._tracking(delivery_id))

    def _tracking(self, delivery_id: int) -> dict[str, Any]:
        """The template's pixel and links for one delivery; nothing when both settings are off."""
        secret = self.config["SECRET_KEY"]
        found: dict[str, Any] = {}
        if self.config["STATS_EMAIL_OPENS"]:
            found["pixel_url"] = absolute_url(
                "tracking.email_open", token=tracking.open_token(secret, delivery_id)
            )
        if self.config["STATS_EMAIL_CLICKS"]:

            def redirect(url: str) -> str:
                token = tracking.click_token(secret, delivery_id, url)
                return absolute_url("tracking.email_click", token=token)

            found["body_html"] = Markup(  # noqa: S704 (the post's own HTML, links replaced)
                tracking.tracked_links(str(self.body_html), base=self.post_url, redirect=redirect)
            )
            found["read_url"] = redirect(self.post_url)
        return found

    def compose_preview(self, email: str) -> EmailMultiAlternatives:
        """The email as a subscriber gets it, to ``email``, with links that change nothing.

        The unsubscribe and preferences links carry the token ``preview``, which
        no subscriber has: following one shows the page's "link not valid" note.
        """
        host = site_host(self.config["SITE_URL"])
        links = Links(
            unsubscribe=absolute_url("newsletter.unsubscribe", token=PREVIEW_TOKEN),
            preferences=absolute_url("newsletter.preferences", token=PREVIEW_TOKEN),
            mailto=f"mailto:{parseaddr(self.config['MAIL_DEFAULT_SENDER'])[1]}",
        )
        return self._message(email, links, make_msgid(f"post-{self.post.id}.preview", host))

    def _message(
        self, email: str, links: Links, msgid: str, tracking: Mapping[str, Any] | None = None
    ) -> EmailMultiAlternatives:
        context = {
            "post": self.post,
            "post_url": self.post_url,
            "read_url": self.post_url,
            "body_html": self.body_html,
            "site_title": self.site_title,
            "site_url": self.config["SITE_URL"],
            "links": links,
            "pixel_url": None,
            **(tracking or {}),
        }
        return html_email(
            subject=self.post.title,
            html=render_email("newsletter/email/post.html", **context),
            base=self.post_url,
            from_email=self.config["MAIL_DEFAULT_SENDER"],
            to=[email],
            headers={
                "Message-ID": msgid,
                "List-Unsubscribe": f"<{links.unsubscribe}>, <{links.mailto}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": f"{self.site_title} <newsletter.{site_host(self.config['SITE_URL'])}>",
            },
        )


def subscriber_note(
    config: Mapping[str, Any], session: DbSession, subscriber_id: int, email: str, kind: str
) -> EmailMultiAlternatives:
    """The confirmation email ("confirm") or the already-subscribed note ("already")."""
    secret, site = config["SECRET_KEY"], config["SITE_URL"]
    links = subscriber_links(config, subscriber_id, email)
    context = {
        "site_title": site_settings(session, config).title,
        "site_url": site,
        "links": links,
        "confirm_url": absolute_url(
            "newsletter.confirm", token=make_token(secret, Purpose.CONFIRM, subscriber_id, email)
        ),
    }
    subjects = {
        "confirm": f"Confirm your subscription to {context['site_title']}",
        "already": f"You are already subscribed to {context['site_title']}",
    }
    return html_email(
        subject=subjects[kind],
        html=render_email(f"newsletter/email/{kind}.html", **context),
        base=site + "/",
        from_email=config["MAIL_DEFAULT_SENDER"],
        to=[email],
    )
