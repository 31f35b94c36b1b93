"""Images an import refers to (featured images; those inside posts stay where they are).

The hook for the media library: until image uploads land, an image keeps its
original URL and the report lists it.  When ``media`` exists, ``keep`` is
where an image is fetched from the old site (when it answers) into the
library, and its new URL returned instead.
"""

from __future__ import annotations

from typing import Protocol


class Listing(Protocol):
    def image(self, url: str) -> None: ...


def keep(url: str, report: Listing) -> str:
    """The URL a post should use for the image at ``url``; noted in the report as kept."""
    report.image(url)
    return url
