"""The staff UI at /admin/: server-rendered forms, plain CSS, no build step.

Each view parses the form, calls one service (sometimes two in the same
transaction), commits once and renders; every rule, permissions included,
lives in the services.
"""

from __future__ import annotations

from broadsheet.admin import (
    auth,
    email_preview,
    manage,
    newsletter,
    posts,
    publishing,
    stats,
    trash,
)
from broadsheet.admin.blueprint import bp

__all__ = [
    "auth", "bp", "email_preview", "manage", "newsletter", "posts", "publishing", "stats",
    "trash",
]  # fmt: skip
