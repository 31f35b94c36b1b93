"""Staff accounts and API tokens."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broadsheet.extensions import Model, utcnow


class Role(enum.StrEnum):
    """Staff roles, least to most."""

    CONTRIBUTOR = "contributor"
    AUTHOR = "author"
    EDITOR = "editor"
    ADMIN = "admin"
    OWNER = "owner"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_ROLE_WORDS = frozenset({role.value for role in Role} | {"administrator", "staff"})


def display_name_for(name: str | None, email: str) -> str:
    """The name readers see: the one given, else the email's local part; never a role.

    Accounts made before a name was asked for may hold none, or only their role
    ("owner"); those are named at display time, so a byline never says "By owner".
    """
    for candidate in (name or "", email.split("@")[0]):
        candidate = candidate.strip()
        if candidate and candidate.lower() not in _ROLE_WORDS:
            return candidate
    return "Staff writer"


class User(Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    bio: Mapped[str] = mapped_column(Text, default="")
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A deactivated account keeps its posts and byline but can no longer sign in.
    deactivated_at: Mapped[datetime | None]
    # Sessions carry it; signing out (or "sign out everywhere") adds one, so every cookie
    # issued before, copies included, stops working.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def display_name(self) -> str:
        return display_name_for(self.name, self.email)

    @property
    def is_active(self) -> bool:
        return self.deactivated_at is None

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def credential_stamp(self) -> str:
        """A short fingerprint of the password hash: it changes whenever the password does.

        Sessions and password-reset links carry it, so a new password ends
        every session and spends every reset link issued before it.
        """
        return hashlib.sha256((self.password_hash or "").encode()).hexdigest()[:16]

    def get_id(self) -> str:
        """The session's user id (Flask-Login), bound to the password and the session generation."""
        return f"{self.id}:{self.credential_stamp}:{self.session_generation}"

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class ApiToken(Model):
    """An Admin API bearer token; only the SHA-256 of the secret is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class SignInFailure(Model):
    """Failed sign-ins for one account (by the address typed) from one client address.

    Sign-in slows down per pair, never per account alone, so a stranger's
    guesses cannot lock out the account's owner signing in from elsewhere.
    """

    __tablename__ = "sign_in_failures"
    __table_args__ = (UniqueConstraint("email", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime] = mapped_column(index=True)
