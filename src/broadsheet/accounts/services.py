"""Staff accounts and tokens: the one place their rules live."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select

from broadsheet.accounts.models import ApiToken, Role, User
from broadsheet.errors import Conflict, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.slugs import make_slug, unique_slug

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")
MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "bs_"  # noqa: S105 (a prefix, not a secret)
_hasher = PasswordHasher()


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_email(email: str) -> str | None:
    """Return why ``email`` is not a usable address, or None."""
    if not email:
        return "is required"
    if len(email) > 254 or not EMAIL_PATTERN.match(email):
        return "is not an email address"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: DbSession,
    *,
    email: str,
    role: Role | str,
    now: datetime,
    name: str | None = None,
    password: str | None = None,
    bio: str = "",
) -> User:
    """Add a staff account; flushes, never commits.

    Raises Invalid for a bad email, role or password and Conflict when the
    address already has an account.
    """
    email = normalise_email(email)
    errors: dict[str, str] = {}
    if problem := check_email(email):
        errors["email"] = problem
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = f"must be one of {', '.join(r.value for r in Role)}"
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"must be at least {MIN_PASSWORD_LENGTH} characters"
    name = (name or email.split("@")[0]).strip()
    if not name or len(name) > 120:
        errors["name"] = "must be 1 to 120 characters"
    if errors:
        raise Invalid(errors)
    if session.scalar(select(func.count()).select_from(User).where(User.email == email)):
        raise Conflict(f"{email} already has an account")
    user = User(
        email=email,
        name=name,
        slug=unique_slug(session, User.slug, make_slug(name)),
        bio=bio,
        role=Role(role),
        password_hash=hash_password(password) if password else None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: DbSession, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"no staff account for {normalise_email(email)}")
    return user


def owner_exists(session: DbSession) -> bool:
    return bool(
        session.scalar(select(func.count()).select_from(User).where(User.role == Role.OWNER))
    )


def _token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: DbSession, user: User, *, label: str, now: datetime
) -> tuple[ApiToken, str]:
    """Make an Admin API token for ``user``; returns the row and the secret, shown once."""
    if len(label) > 100:
        raise Invalid({"label": "must be at most 100 characters"})
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, label=label, token_hash=_token_digest(secret), created_at=now)
    session.add(token)
    session.flush()
    return token, secret


def authenticate_token(session: DbSession, secret: str, *, now: datetime) -> User | None:
    """The user behind a live token, recording when it was used; None if unknown or revoked."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _token_digest(secret)))
    if token is None or token.revoked_at is not None:
        return None
    token.last_used_at = now
    return token.user
