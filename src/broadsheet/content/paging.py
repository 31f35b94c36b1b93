"""Pages of a listing, and the one rule of which page numbers exist.

Every listing (the site's archives, the Content API's lists, the staff's
post list, the subscriber roster) answers with a ``Page`` and asks
``check_page`` whether the number it was given names one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from broadsheet.errors import NotFound

T = TypeVar("T")


class Remember(Protocol):
    """Given a name for a value and how to compute it, the value (perhaps kept from before)."""

    def __call__(self, name: str, compute: Callable[[], T], /) -> T: ...


def compute(_name: str, value: Callable[[], T], /) -> T:
    """The ``Remember`` that keeps nothing."""
    return value()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; ``number`` counts from 1."""

    items: list[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


def check_page(number: int, total: int, per_page: int, *, allow_empty: bool = True) -> None:
    """Page 1 exists (it may be empty, if allowed); any other page must hold something.

    Raises NotFound otherwise.
    """
    if number < 1 or (number > 1 and (number - 1) * per_page >= total):
        raise NotFound(f"there is no page {number}")
    if total == 0 and not allow_empty:
        raise NotFound("nothing has been published here")
