"""Staff accounts and tokens: the one place their rules live."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select

from broadsheet.accounts.models import ApiToken, Role, User
from broadsheet.accounts.permissions import OPERATOR, Action, Actor, can_give_role, require
from broadsheet.addresses import is_email_address, normalise_email
from broadsheet.errors import Conflict, Forbidden, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.queue import enqueue_after_commit
from broadsheet.slugs import make_slug, unique_slug

MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "bs_"  # noqa: S105 (a prefix, not a secret)
_hasher = PasswordHasher()


def check_email(email: str) -> str | None:
    """Return why ``email`` is not a usable address, or None."""
    if not email:
        return "is required"
    if not is_email_address(email):
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
    actor: Actor = OPERATOR,
) -> User:
    """Add a staff account; flushes, never commits.

    ``actor`` needs to manage staff and may not hand out a role above what
    ``can_give_role`` allows (the command line, as the operator, may).
    Raises Forbidden, Invalid for a bad email, role or password, and
    Conflict when the address already has an account.
    """
    require(actor, Action.MANAGE_STAFF)
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
    if actor is not OPERATOR and not can_give_role(actor, Role(role)):
        raise Forbidden(f"A {actor.role.value} cannot make someone {Role(role).value}.")
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
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    token.last_used_at = now
    return token.user


def staff_tokens(session: DbSession, user: User) -> list[ApiToken]:
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    )


def revoke_token(session: DbSession, token_id: int, *, now: datetime) -> ApiToken:
    """Stop a token from working, for good; revoking twice keeps the first time.  Flushes."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"there is no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()
    return token


def check_password(password: str) -> str | None:
    """Return why ``password`` is not good enough, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    return None


def authenticate(session: DbSession, email: str, password: str) -> User | None:
    """The active account with this email and password, or None (saying nothing of which)."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        hash_password(password)  # spend the same time as a real check, so timing tells nothing
        return None
    if not verify_password(user, password) or not user.is_active:
        return None
    return user


def user_for_session(session: DbSession, session_id: str) -> User | None:
    """The account a session cookie names, if its password has not changed since sign-in."""
    user_id, _sep, stamp = session_id.partition(":")
    if not user_id.isdigit():
        return None
    user = session.get(User, int(user_id))
    if (
        user is None
        or not user.is_active
        or not secrets.compare_digest(user.credential_stamp, stamp)
    ):
        return None
    return user


def staff(session: DbSession) -> list[User]:
    """Every staff account, most senior first."""
    users = list(session.scalars(select(User).order_by(User.name, User.id)))
    return sorted(users, key=lambda u: -u.role.rank)


def change_role(session: DbSession, user: User, role: Role | str, *, actor: Actor) -> User:
    """Give ``user`` another role below owner; ownership moves only by ``transfer_ownership``."""
    try:
        role = Role(role)
    except ValueError:
        raise Invalid({"role": f"must be one of {', '.join(r.value for r in Role)}"}) from None
    require(actor, Action.MANAGE_STAFF)
    if not can_give_role(actor, role, current=user.role):
        raise Forbidden(f"A {actor.role.value} cannot make a {user.role.value} {role.value}.")
    if actor.id == user.id and role is not user.role:
        raise Forbidden("You cannot change your own role.")
    user.role = role
    session.flush()
    return user


def set_active(
    session: DbSession, user: User, *, active: bool, actor: Actor, now: datetime
) -> User:
    """Deactivate an account (it keeps its posts, cannot sign in) or bring it back."""
    require(actor, Action.MANAGE_STAFF)
    if user.role is Role.OWNER:
        raise Forbidden("The owner's account cannot be deactivated; hand ownership on first.")
    if actor.id == user.id:
        raise Forbidden("You cannot deactivate your own account.")
    user.deactivated_at = None if active else (user.deactivated_at or now)
    session.flush()
    return user


def transfer_ownership(session: DbSession, new_owner: User, *, actor: Actor) -> User:
    """Make ``new_owner`` the owner; the previous owner (the actor) becomes an admin."""
    require(actor, Action.TRANSFER_OWNERSHIP)
    if not new_owner.is_active:
        raise Invalid({"user": "is deactivated"})
    if actor.id == new_owner.id:
        raise Invalid({"user": "already owns the site"})
    if isinstance(actor, User):
        actor.role = Role.ADMIN
    new_owner.role = Role.OWNER
    session.flush()
    return new_owner


# Password reset links: a timed signature over the account id and its credential stamp.
# Setting a new password changes the stamp, so a link works once and dies with the old
# password; the signature's age makes it expire.
RESET_SALT = "broadsheet.password-reset"


def password_reset_token(user: User, *, secret_key: str) -> str:
    serializer = URLSafeTimedSerializer(secret_key, salt=RESET_SALT)
    return serializer.dumps({"user": user.id, "stamp": user.credential_stamp})


def user_for_reset_token(session: DbSession, token: str, *, secret_key: str, max_age: int) -> User:
    """The account a reset link was made for; Invalid if it is forged, expired or spent."""
    serializer = URLSafeTimedSerializer(secret_key, salt=RESET_SALT)
    try:
        data = serializer.loads(token, max_age=max_age)
    except SignatureExpired:
        raise Invalid({"token": "This reset link has expired; ask for a new one."}) from None
    except BadSignature:
        raise Invalid({"token": "This reset link is not valid."}) from None
    user = session.get(User, data.get("user")) if isinstance(data, dict) else None
    if user is None or not user.is_active or user.credential_stamp != data.get("stamp"):
        raise Invalid({"token": "This reset link has already been used; ask for a new one."})
    return user


def request_password_reset(session: DbSession, email: str) -> None:
    """Email a reset link to the account with this address, if there is an active one.

    The email is sent by the worker after the caller commits.  Says nothing
    of whether the address has an account.
    """
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is not None and user.is_active:
        enqueue_after_commit(session, "broadsheet.send_password_reset", user.id)


def reset_password(session: DbSession, user: User, password: str) -> User:
    """Set a new password, which ends every session and spends every earlier reset link."""
    if problem := check_password(password):
        raise Invalid({"password": problem})
    user.password_hash = hash_password(password)
    session.flush()
    return user
