"""Public addresses: SITE_URL and the path Flask builds, for feeds, emails and the API."""

from __future__ import annotations

from typing import Any

from flask import current_app, has_request_context, request, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    """The public address of ``endpoint``, in a request or in a task (an app context).

    ``SITE_URL`` already names any prefix the site is mounted under, so the
    script root Flask would add is dropped rather than doubled.  Outside a
    request (a worker composing an email) the path comes from the app's URL
    map itself, so no SERVER_NAME is needed.
    """
    if not has_request_context():
        adapter = current_app.url_map.bind("localhost", script_name="/")
        path = adapter.build(endpoint, values)
    else:
        path = url_for(endpoint, **values)
        root = request.script_root
        if root and path.startswith(root):
            path = path[len(root) :]
    return f"{current_app.config['SITE_URL']}{path}"
