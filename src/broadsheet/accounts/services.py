"""Staff accounts and tokens: the one place their rules live."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from broadsheet.accounts.models import ApiToken, Role, SignInFailure, User
from broadsheet.accounts.permissions import OPERATOR, Action, Actor, can_give_role, require
from broadsheet.addresses import is_email_address, normalise_email
from broadsheet.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from broadsheet.extensions import DbSession
from broadsheet.outbox import services as outbox
from broadsheet.outbox.models import OutboxEmail
from broadsheet.outbox.services import queue_email
from broadsheet.slugs import make_slug, unique_slug

MIN_PASSWORD_LENGTH = 10
TOKEN_PREFIX = "bs_"  # noqa: S105 (a prefix, not a secret)
PASSWORDS = PasswordHasher()
FREE_FAILURES = 5  # failed sign-ins per account and address before each attempt waits
MAX_SIGN_IN_DELAY = timedelta(minutes=15)
FORGET_FAILURES_AFTER = timedelta(hours=24)


def check_email(email: str) -> str | None:
    """Return why ``email`` is not a usable address, or None."""
    if not email:
        return "is required"
    if not is_email_address(email):
        return "is not an email address"
    return None


def hash_password(password: str) -> str:
    return PASSWORDS.hash(password)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return PASSWORDS.verify(user.password_hash, password)
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
    actor: Actor,
) -> User:
    """Add a staff account; flushes, never commits.

    ``actor`` needs to manage staff and may not hand out a role above what
    ``can_give_role`` allows (the command line passes the operator, who may).
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


class TooManyAttempts(DomainError):
    """Sign-in from this address for this account must wait ``retry_after`` seconds more."""

    status = 429
    title = "Too many attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed attempts; try again in {retry_after} seconds.")
        self.retry_after = retry_after


def client_key(address: str) -> str:
    """The client address that sign-in limits count by: an IPv6 host counts as its /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def sign_in_wait(session: DbSession, email: str, address: str, *, now: datetime) -> float:
    """Seconds before the next sign-in attempt for ``email`` from ``address`` may be checked.

    The first FREE_FAILURES failures cost nothing; after N of them each attempt
    waits 2^(N - FREE_FAILURES + 1) seconds after the last failure, up to
    MAX_SIGN_IN_DELAY; a pair with no failure for FORGET_FAILURES_AFTER starts
    afresh.
    """
    row = session.scalar(
        select(SignInFailure).where(
            SignInFailure.email == normalise_email(email)[:254],
            SignInFailure.address == client_key(address),
        )
    )
    if row is None or row.last_failed_at < now - FORGET_FAILURES_AFTER:
        return 0.0
    extra = row.failures - FREE_FAILURES
    if extra < 0:
        return 0.0
    delay = min(2.0 ** (extra + 1), MAX_SIGN_IN_DELAY.total_seconds())
    return max(0.0, (row.last_failed_at - now).total_seconds() + delay)


def _record_failure(session: DbSession, email: str, address: str, now: datetime) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = now - FORGET_FAILURES_AFTER
    statement = insert(SignInFailure).values(
        email=email, address=address, failures=1, last_failed_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["email", "address"],
            set_={
                "failures": case(
                    (SignInFailure.last_failed_at < stale, 1), else_=SignInFailure.failures + 1
                ),
                "last_failed_at": now,
            },
        )
    )
    # Forget pairs that went quiet, so the table holds only recent trouble.
    session.execute(delete(SignInFailure).where(SignInFailure.last_failed_at < stale))


@functools.cache
def _dummy_hash() -> str:
    return PASSWORDS.hash(secrets.token_urlsafe(16))


def authenticate(
    session: DbSession,
    email: str,
    password: str,
    *,
    address: str,
    now: datetime,
    hasher: PasswordHasher = PASSWORDS,
) -> User | None:
    """The active account with this email and password, or None (saying nothing of which).

    Every attempt that is checked verifies one password hash, whether the
    account exists, has no password yet (invited) or is deactivated, so the
    time taken tells nothing.  A failure is counted for the email and the
    client ``address``; raises TooManyAttempts while that pair must wait
    (``sign_in_wait``), without checking the password.  Success forgets the
    pair's failures.  Flushes; the caller commits either way.
    """
    key, address = normalise_email(email)[:254], client_key(address)
    if wait := sign_in_wait(session, key, address, now=now):
        raise TooManyAttempts(math.ceil(wait))
    user = session.scalar(select(User).where(User.email == key))
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        matched = hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        matched = False
    if user is None or not matched or not user.is_active:
        _record_failure(session, key, address, now)
        return None
    session.execute(
        delete(SignInFailure).where(SignInFailure.email == key, SignInFailure.address == address)
    )
    return user


def sign_out(session: DbSession, user: User) -> None:
    """End every session of ``user``, the one signing out and any copy of its cookie."""
    user.session_generation += 1
    session.flush()


def end_sessions(session: DbSession, user: User, *, actor: Actor) -> User:
    """Sign ``user`` out everywhere: their own choice, or staff management's.  Flushes."""
    if actor.id != user.id:
        require(actor, Action.MANAGE_STAFF)
        if not can_give_role(actor, Role.CONTRIBUTOR, current=user.role):
            raise Forbidden(f"A {actor.role.value} cannot sign a {user.role.value} out.")
    sign_out(session, user)
    return user


def user_for_session(session: DbSession, session_id: str) -> User | None:
    """The account a session cookie names, unless it signed out or changed password since."""
    user_id, _sep, rest = session_id.partition(":")
    stamp, _sep, generation = rest.partition(":")
    if not user_id.isdigit() or not generation.isdigit():
        return None
    user = session.get(User, int(user_id))
    if (
        user is None
        or not user.is_active
        or not secrets.compare_digest(user.credential_stamp, stamp)
        or user.session_generation != int(generation)
    ):
        return None
    return user


def staff(session: DbSession, *, actor: Actor) -> list[User]:
    """Every staff account, most senior first, for a staff manager; raises Forbidden."""
    require(actor, Action.MANAGE_STAFF)
    users = list(session.scalars(select(User).order_by(User.name, User.id)))
    return sorted(users, key=lambda u: -u.role.rank)


def staff_account(session: DbSession, user_id: int, *, actor: Actor) -> User:
    """One staff account, for a staff manager; raises Forbidden or NotFound."""
    require(actor, Action.MANAGE_STAFF)
    member = session.get(User, user_id)
    if member is None:
        raise NotFound(f"there is no staff member {user_id}")
    return member


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


def request_password_reset(session: DbSession, email: str, *, now: datetime) -> None:
    """Email a reset link to the account with this address, if there is an active one.

    The email is recorded in the outbox and sent by the worker after the
    caller commits.  Says nothing of whether the address has an account.
    """
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is not None and user.is_active:
        queue_email(
            session, task="broadsheet.send_password_reset", kind="password_reset",
            ref_id=user.id, recipient=user.email, now=now,
        )  # fmt: skip


def reset_password(session: DbSession, user: User, password: str) -> User:
    """Set a new password, which ends every session and spends every earlier reset link."""
    if problem := check_password(password):
        raise Invalid({"password": problem})
    user.password_hash = hash_password(password)
    session.flush()
    return user


def failed_emails(session: DbSession, *, actor: Actor, limit: int = 20) -> list[OutboxEmail]:
    """Password reset and subscriber emails that could not be sent, newest first, with why.

    For staff managers, who can tell the person or fix the mail settings.
    """
    require(actor, Action.MANAGE_STAFF)
    return outbox.failed_emails(session, limit=limit)
