"""The staff UI at /admin/: server-rendered forms, plain CSS, no build step.

Each view parses the form, calls one service (sometimes two in the same
transaction), commits once and renders; every rule, permissions included,
lives in the services.
"""

from __future__ import annotations

from broadsheet.admin import (
    auth,
    editor,
    email_preview,
    manage,
    media,
    newsletter,
    porting,
    posts,
    publishing,
    redirects,
    stats,
    trash,
)
from broadsheet.admin.blueprint import bp

__all__ = [
    "auth", "bp", "editor", "email_preview", "manage", "media", "newsletter", "porting",
    "posts", "publishing", "redirects", "stats", "trash",
]  # fmt: skip
