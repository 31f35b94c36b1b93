"""Password reset links: a timed signature over the account id and its credential stamp.

Setting a new password changes the stamp, so a link works once and dies with
the old password; the signature's age makes it expire.
"""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from broadsheet.accounts.models import User
from broadsheet.errors import Invalid
from broadsheet.extensions import DbSession

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
