"""Checks on short text that ends up in headers: titles, names, subjects."""

from __future__ import annotations

import unicodedata

# Line and paragraph separators are not category Cc, but mail and feed readers break lines on
# them all the same.
_LINE_BREAKS = {"\u2028", "\u2029", "\x85"}


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a control character (a newline, a tab, NUL…) or a line break.

    A title with a newline in it would become a header that a mail library refuses (or, in
    a careless one, a second header), so single-line fields refuse them at the service.
    """
    return any(unicodedata.category(c) == "Cc" or c in _LINE_BREAKS for c in value)


def check_single_line(value: str, *, limit: int) -> str | None:
    """The problem with a one-line field of at most ``limit`` characters, or None."""
    if not value.strip() or len(value.strip()) > limit:
        return f"must be 1 to {limit} characters"
    if has_control_characters(value.strip()):
        return "must be one line, without control characters"
    return None
