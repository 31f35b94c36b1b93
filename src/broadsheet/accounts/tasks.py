"""Account email, sent by the worker through the outbox (broadsheet.outbox)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from flask import current_app
from flask_mailman import EmailMessage

from broadsheet.accounts.models import User
from broadsheet.accounts.tokens import password_reset_token
from broadsheet.extensions import db
from broadsheet.mail_layout import html_email, render_email, site_title
from broadsheet.outbox.models import OutboxEmail
from broadsheet.outbox.tasks import run_email_task
from broadsheet.queue import WAIT_FOR_DATABASE
from broadsheet.urls import absolute_url


def compose_password_reset(email: OutboxEmail) -> EmailMessage | None:
    """A fresh reset link for the account; None when it is gone, deactivated or re-addressed."""
    user = db.session.get(User, email.ref_id)
    if user is None or not user.is_active or user.email != email.recipient:
        return None
    config = current_app.config
    minutes = config["PASSWORD_RESET_MAX_AGE"] // 60
    token = password_reset_token(user, secret_key=config["SECRET_KEY"])
    link = absolute_url("admin.password_reset", token=token)  # the admin's page, by endpoint
    html = render_email(
        "accounts/email/password_reset.html",
        name=user.name, minutes=minutes, link=link,
        site_title=site_title(), site_url=config["SITE_URL"],
    )  # fmt: skip
    return html_email(
        subject="Reset your password", html=html, base=config["SITE_URL"] + "/", to=[user.email]
    )


@shared_task(name="broadsheet.send_password_reset", bind=True, **WAIT_FOR_DATABASE)
def send_password_reset(self: Task[Any, Any], email_ids: list[int]) -> int:
    """Send the reset links recorded in the outbox as ``email_ids``; returns how many went.

    Sending twice is harmless (each link works until the password changes);
    the outbox makes it rare.
    """
    return run_email_task(self, email_ids, compose_password_reset)
