"""Public addresses: SITE_URL and the path Flask builds, for feeds, emails and the API."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import current_app, has_request_context, request, url_for

PATH_MEMORY = 20_000  # paths built last: one per post, tag and author readers asked for


def path_for(endpoint: str, **values: Any) -> str:
    """``url_for`` in a request, each plain path built once and reused.

    A path with given values (no ``_external``, ``_anchor`` or other option)
    is the same for every request to the same app on the same script root: a
    listing's thirty links are not rebuilt for each reader.  Anything else
    (outside a request too) goes to ``url_for``.
    """
    if not has_request_context() or any(key.startswith("_") for key in values):
        return url_for(endpoint, **values)
    try:
        where = (id(current_app.url_map), request.script_root)
        return _built(where, endpoint, tuple(sorted(values.items())))
    except TypeError:  # a value that cannot be a key (a list): built afresh
        return url_for(endpoint, **values)


@lru_cache(maxsize=PATH_MEMORY)
def _built(_where: tuple[int, str], endpoint: str, values: tuple[tuple[str, Any], ...]) -> str:
    return url_for(endpoint, **dict(values))


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
        path = path_for(endpoint, **values)
        root = request.script_root
        if root and path.startswith(root):
            path = path[len(root) :]
    return f"{current_app.config['SITE_URL']}{path}"
