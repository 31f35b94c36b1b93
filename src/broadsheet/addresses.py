"""Email addresses: the one shape check every part of the app uses (staff and subscribers).

Deliberately loose, as an address is only proven by the mail that reaches
it: one @, something before it, a dotted domain after it, no spaces, at most
254 characters.  Each caller words its own message.
"""

from __future__ import annotations

import re

MAX_EMAIL = 254
_shape = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def normalise_email(raw: str) -> str:
    """The address as stored and compared: trimmed and lower-cased (not checked)."""
    return raw.strip().lower()


def is_email_address(email: str) -> bool:
    """Whether ``email`` (normalised) has the shape of an address."""
    return len(email) <= MAX_EMAIL and _shape.match(email) is not None
