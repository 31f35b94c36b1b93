"""The newsletter's reader pages: subscribe, confirm, unsubscribe, preferences.

Links in emails open a page with a button; only the button's POST changes
anything, so a mail scanner that fetches every link confirms and cancels
nothing.  The unsubscribe POST is also the RFC 8058 one-click target: it
needs no cookie, is idempotent, and answers 200 without redirecting.  These
forms carry no CSRF token: pages with the subscribe form are cached for
everyone, and every action here is authorised by the signed link itself.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue

from broadsheet import page_cache
from broadsheet.content import queries
from broadsheet.errors import Invalid
from broadsheet.extensions import csrf, db, utcnow
from broadsheet.newsletter import services
from broadsheet.newsletter.models import SubscriberStatus
from broadsheet.newsletter.tokens import Purpose
from broadsheet.site.head import Head
from broadsheet.site.views import current_settings, site_feeds

# Its templates live with the site's (site/templates/newsletter/); create_app registers it.
bp = Blueprint("newsletter", __name__)
csrf.exempt(bp)

# The form has a field people never see; a bot that fills it in is thanked and ignored.
HONEYPOT = "website"


def _page(template: str, title: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """A reader page in the site's theme: its settings, navigation and feeds, never cached."""
    settings = current_settings()  # what the masthead and footer read, as on every site page
    head = Head(
        title=f"{title} — {settings.title}",
        description=title,
        canonical="",
        feeds=site_feeds(),
        noindex=True,
    )
    body = render_template(
        f"newsletter/{template}",
        head=head,
        title=title,
        nav_pages=queries.public_pages(db.session, now=utcnow()),
        **context,
    )
    return body, status, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@bp.get("/subscribe/")
def subscribe_form() -> ResponseReturnValue:
    # ``?tag=<slug>`` (the link on a tag's page) offers that tag ticked; an unknown one is ignored.
    chosen = [request.args.get("tag", "")]
    tags = services.offered_tags(
        db.session, now=utcnow(), chosen=chosen, remember=page_cache.remember
    )
    return _page("subscribe.html", "Subscribe", tags=tags, values={}, errors={})


@bp.post("/subscribe/")
@services.subscribe_rate_limit
def subscribe() -> ResponseReturnValue:
    form = request.form
    if form.get(HONEYPOT):
        return _page("check_inbox.html", "Check your inbox")
    chosen = form.getlist("tags")
    try:
        services.subscribe(
            db.session,
            email=form.get("email", ""),
            tags=chosen,
            now=utcnow(),
            page=form.get("page", ""),
        )
        db.session.commit()
    except Invalid as error:
        db.session.rollback()
        tags = services.offered_tags(
            db.session, now=utcnow(), chosen=chosen, remember=page_cache.remember
        )
        values = {"email": form.get("email", "")}
        return _page("subscribe.html", "Subscribe", 422, tags=tags, values=values,
                     errors=error.fields)  # fmt: skip
    return _page("check_inbox.html", "Check your inbox")


@bp.get("/subscribe/confirm/<token>")
def confirm_form(token: str) -> ResponseReturnValue:
    secret = current_app.config["SECRET_KEY"]
    subscriber = services.subscriber_for(
        db.session, secret_key=secret, purpose=Purpose.CONFIRM, token=token
    )
    if subscriber.status is SubscriberStatus.CONFIRMED:
        # A used link: say so rather than offer the button again.
        return _page("confirmed.html", "Already confirmed", subscriber=subscriber, already=True)
    if subscriber.status is SubscriberStatus.UNSUBSCRIBED:
        return _page("confirmed.html", "Nothing changed", subscriber=subscriber)
    return _page("confirm.html", "Confirm your subscription", token=token)


@bp.post("/subscribe/confirm/<token>")
def confirm(token: str) -> ResponseReturnValue:
    secret = current_app.config["SECRET_KEY"]
    subscriber = services.confirm(db.session, secret_key=secret, token=token, now=utcnow())
    db.session.commit()
    return _page("confirmed.html", "You are subscribed", subscriber=subscriber)


@bp.get("/unsubscribe/<token>")
def unsubscribe_form(token: str) -> ResponseReturnValue:
    secret = current_app.config["SECRET_KEY"]
    subscriber = services.subscriber_for(
        db.session, secret_key=secret, purpose=Purpose.UNSUBSCRIBE, token=token
    )
    return _page("unsubscribe.html", "Unsubscribe", token=token, subscriber=subscriber)


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> ResponseReturnValue:
    secret = current_app.config["SECRET_KEY"]
    services.unsubscribe(db.session, secret_key=secret, token=token, now=utcnow())
    db.session.commit()
    return _page("unsubscribed.html", "You are unsubscribed")


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> ResponseReturnValue:
    secret = current_app.config["SECRET_KEY"]
    errors: dict[str, str] = {}
    saved = False
    status = 200
    if request.method == "POST":
        try:
            services.update_preferences(
                db.session, secret_key=secret, token=token,
                tags=request.form.getlist("tags"), now=utcnow(),
            )  # fmt: skip
            db.session.commit()
            saved = True
        except Invalid as error:
            db.session.rollback()
            errors, status = error.fields, 422
    subscriber = services.subscriber_for(
        db.session, secret_key=secret, purpose=Purpose.PREFERENCES, token=token
    )
    # After a refused change the form shows what the reader sent, as the subscribe form does.
    chosen = request.form.getlist("tags") if errors else [tag.slug for tag in subscriber.tags]
    return _page(
        "preferences.html",
        "Your newsletter preferences",
        status,
        tags=services.offered_tags(
            db.session, now=utcnow(), chosen=chosen, remember=page_cache.remember
        ),
        errors=errors,
        saved=saved,
        subscriber=subscriber,
        action=url_for("newsletter.preferences", token=token),
    )
