"""Account email, sent by the worker."""

from __future__ import annotations

import logging

from celery import shared_task
from flask import current_app
from flask_mailman import EmailMessage

from broadsheet.accounts import services
from broadsheet.accounts.models import User
from broadsheet.extensions import db

log = logging.getLogger(__name__)
RESET_PATH = "/admin/password-reset/"


def password_reset_url(user: User) -> str:
    token = services.password_reset_token(user, secret_key=current_app.config["SECRET_KEY"])
    return f"{current_app.config['SITE_URL']}{RESET_PATH}{token}"


@shared_task(
    name="broadsheet.send_password_reset",
    autoretry_for=(OSError,),
    retry_backoff=5,
    max_retries=5,
)
def send_password_reset(user_id: int) -> bool:
    """Email a fresh reset link to the account; False when it is gone or deactivated.

    Sending twice is harmless: each link works until the password changes.
    """
    user = db.session.get(User, user_id)
    if user is None or not user.is_active:
        return False
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    body = (
        f"Hello {user.name},\n\n"
        "Someone (we hope you) asked to reset your Broadsheet password. Follow this link "
        f"within {minutes} minutes to choose a new one:\n\n"
        f"{password_reset_url(user)}\n\n"
        "The link works once. If you did not ask for it, ignore this email: your password "
        "stays as it is.\n"
    )
    EmailMessage(subject="Reset your password", body=body, to=[user.email]).send()
    log.info("sent a password reset link to user %s", user.id)
    return True
