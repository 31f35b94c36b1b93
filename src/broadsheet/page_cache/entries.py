"""What the page cache stores, and how: data (msgpack), sealed with an HMAC checked on read.

Whoever can write to the cache's Redis or folder must not be able to make a
web process run anything, nor serve a page of their own.  So an entry is
plain data, never a pickle, and carries a MAC over the key it is stored
under and its bytes, keyed from ``SECRET_KEY``: a stored entry moved to
another key, altered, or written by anything else fails the check, is
logged, and is a miss.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import msgpack

log = logging.getLogger("broadsheet.page_cache")

FORMAT = b"bs1:"  # changes when the layout below does: older entries are then misses
MAC_BYTES = hashlib.sha256().digest_size


@dataclass(frozen=True)
class Entry:
    """A stored response, without per-request headers, and the generation it was built in."""

    generation: str
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class Sealer:
    """Packs values into sealed bytes and opens them again, refusing any that fail the MAC."""

    def __init__(self, secret: str | bytes) -> None:
        secret = secret.encode() if isinstance(secret, str) else secret
        # A key of the page cache's own: a MAC made here is good for nothing else.
        self.key = hmac.new(secret, b"broadsheet.page_cache.entries", hashlib.sha256).digest()

    def _mac(self, name: str, payload: bytes) -> bytes:
        return hmac.new(self.key, name.encode() + b"\0" + payload, hashlib.sha256).digest()

    def seal(self, name: str, value: Any) -> bytes:
        payload: bytes = msgpack.packb(value, use_bin_type=True)
        return FORMAT + self._mac(name, payload) + payload

    def open(self, name: str, stored: Any) -> tuple[bool, Any]:
        """Whether ``stored`` (read from key ``name``) is a sound entry, and its value."""
        if stored is None:
            return False, None
        if not isinstance(stored, bytes) or not stored.startswith(FORMAT):
            log.warning("page cache entry %s is not in the page cache's format; ignored", name)
            return False, None
        mac = stored[len(FORMAT) : len(FORMAT) + MAC_BYTES]
        payload = stored[len(FORMAT) + MAC_BYTES :]
        if not hmac.compare_digest(mac, self._mac(name, payload)):
            log.warning("page cache entry %s failed its integrity check; ignored", name)
            return False, None
        try:
            return True, msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException):  # sealed by us, so only a changed layout
            return False, None

    def seal_entry(self, name: str, entry: Entry) -> bytes:
        return self.seal(name, [entry.generation, entry.status, entry.headers, entry.body])

    def open_entry(self, name: str, stored: Any) -> Entry | None:
        sound, value = self.open(name, stored)
        if not sound:
            return None
        try:
            generation, status, headers, body = value
            return Entry(generation, status, [(str(k), str(v)) for k, v in headers], body)
        except (TypeError, ValueError):
            return None
