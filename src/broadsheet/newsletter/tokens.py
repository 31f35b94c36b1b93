"""Signed links for subscribers: confirm, unsubscribe, change preferences.

A token names the subscriber and a digest of their address, signed with the
site's secret key and a salt per purpose, so one kind of link never works as
another, a link cannot be guessed, and a link made for an address that was
deleted and subscribed again does not act on the new subscription.
"""

from __future__ import annotations

import enum
import hashlib

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM_MAX_AGE = 14 * 24 * 3600  # seconds a confirmation link stays good


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


def _serializer(secret_key: str, purpose: Purpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"broadsheet.newsletter.{purpose.value}")


def _digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def make_token(secret_key: str, purpose: Purpose, subscriber_id: int, email: str) -> str:
    return _serializer(secret_key, purpose).dumps([subscriber_id, _digest(email)])


def read_token(secret_key: str, purpose: Purpose, token: str) -> tuple[int, str] | None:
    """The (subscriber id, address digest) a token names, or None when it is forged or stale."""
    max_age = CONFIRM_MAX_AGE if purpose is Purpose.CONFIRM else None
    try:
        payload = _serializer(secret_key, purpose).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not isinstance(payload[0], int)
        or not isinstance(payload[1], str)
    ):
        return None
    return payload[0], payload[1]


def matches(email: str, digest: str) -> bool:
    return _digest(email) == digest
