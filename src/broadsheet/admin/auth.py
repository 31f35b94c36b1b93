"""Signing in and out, and password reset by an emailed link.

Failed sign-ins slow down per account and client address (growing delays,
kept in the database: ``accounts.authenticate``), never per account alone,
so a stranger's guesses cannot lock staff out; a looser limit per address
stops one address trying many accounts.  Only failures count, so a person
who types their password right is never held up.  Sessions are signed
cookies bound to the password and the account's session generation
(``User.get_id``): a new password, signing out, or "sign out everywhere"
ends every session of the account, copied cookies included.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, flash, make_response, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from broadsheet.accounts import services as accounts
from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, can
from broadsheet.accounts.tokens import user_for_reset_token
from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import page, show_error
from broadsheet.admin.forms import ButtonForm, LoginForm, ResetForm, ResetRequestForm
from broadsheet.errors import Invalid
from broadsheet.extensions import db, limiter, login_manager, utcnow

OPEN_ENDPOINTS = {
    "admin.login", "admin.logout", "admin.password_reset_request", "admin.password_reset",
    "admin.static",
}  # fmt: skip
LOGIN_LIMIT_PER_ADDRESS = "20 per 10 minutes"
RESET_LIMIT_PER_ADDRESS = "5 per hour"


@login_manager.user_loader
def load_user(session_id: str) -> User | None:
    return accounts.user_for_session(db.session, session_id)


@bp.before_request
def staff_only() -> ResponseReturnValue | None:
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if not can(current_user if current_user.is_authenticated else None, Action.VIEW_ADMIN):
        return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    # Framing: DENY, like every page (headers.py); the preview allows its own site.
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@bp.errorhandler(429)
def too_many_attempts(error: Any) -> ResponseReturnValue:
    return page(
        "message.html",
        429,
        title="Too many attempts",
        message="Too many attempts from here or for this account. Wait a few minutes, then "
        "try again.",
    )


def _failed(response: Response) -> bool:
    return response.status_code == 401


def _safe_next(target: str | None) -> str:
    """Only a path inside the admin may follow sign-in: never another site."""
    parts = urlsplit(target or "")
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin/"):
        return url_for("admin.dashboard")
    return target or url_for("admin.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(LOGIN_LIMIT_PER_ADDRESS, methods=["POST"], deduct_when=_failed)
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(url_for("admin.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = accounts.authenticate(
                db.session, form.email.data or "", form.password.data or "",
                address=request.remote_addr or "", now=utcnow(),
            )  # fmt: skip
        except accounts.TooManyAttempts as error:
            db.session.rollback()
            flash(f"Too many failed attempts from here for this account. Try again in "
                  f"{error.retry_after} seconds.", "error")  # fmt: skip
            response = make_response(page("login.html", 429, form=form))
            response.headers["Retry-After"] = str(error.retry_after)
            return response
        db.session.commit()  # the failure counted, or the failures forgotten
        if user is not None:
            # A fresh session on sign-in, so a session planted before it is worth nothing.
            session.clear()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong email or password, or the account is deactivated.", "error")
        return page("login.html", 401, form=form)
    return page("login.html", 400 if form.is_submitted() else 200, form=form)


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    if ButtonForm().validate_on_submit():
        if current_user.is_authenticated:
            # Every cookie of this account stops working, copies included (accounts.sign_out).
            accounts.sign_out(db.session, current_user._get_current_object())
            db.session.commit()
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("admin.login"))


@bp.route("/password-reset/", methods=["GET", "POST"])
@limiter.limit(RESET_LIMIT_PER_ADDRESS, methods=["POST"])
def password_reset_request() -> ResponseReturnValue:
    form = ResetRequestForm()
    if form.validate_on_submit():
        accounts.request_password_reset(db.session, form.email.data or "", now=utcnow())
        db.session.commit()
        flash(
            "If that address has a staff account, a reset link is on its way. It works once, "
            "within the hour.",
            "info",
        )
        return redirect(url_for("admin.login"))
    return page("reset_request.html", form=form)


# The emailed link (accounts.tasks) names this endpoint.
@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def password_reset(token: str) -> ResponseReturnValue:
    config = current_app.config
    try:
        user = user_for_reset_token(
            db.session,
            token,
            secret_key=config["SECRET_KEY"],
            max_age=config["PASSWORD_RESET_MAX_AGE"],
        )
    except Invalid as error:
        return page("message.html", 400, title="Reset link", message=error.fields["token"])
    form = ResetForm()
    if form.validate_on_submit():
        try:
            accounts.reset_password(db.session, user, form.password.data or "")
        except Invalid as error:
            show_error(error, form)
            return page("reset.html", 422, form=form)
        db.session.commit()
        logout_user()
        session.clear()
        flash("Your password is changed. Sign in with it now.", "info")
        return redirect(url_for("admin.login"))
    return page("reset.html", 422 if form.is_submitted() else 200, form=form)
