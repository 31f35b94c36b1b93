"""Public addresses: SITE_URL and the path Flask builds, for feeds, emails and the API."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, request, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    """The public address of ``endpoint``.

    ``SITE_URL`` already names any prefix the site is mounted under, so the
    script root Flask would add is dropped rather than doubled.
    """
    path = url_for(endpoint, **values)
    root = request.script_root if has_request_context() else ""
    if root and path.startswith(root):
        path = path[len(root) :]
    return f"{current_app.config['SITE_URL']}{path}"
