"""Images an import refers to: fetched from the old site into the media library, or kept.

A post's feature image and the images in its body (``![..](url)`` and
``<img src>``) are downloaded when the door gives the writer a ``Fetching``
(the command line and the worker do, unless ``IMPORT_FETCH_IMAGES`` is off),
stored through the media library's own upload (its checks, its store, its
queued variants), and the post then points at the new address.  An image
that cannot be fetched keeps its original URL and the report says why.

The rules for what is fetched, written once here:
- only ``http`` and ``https``; a path on the old site (Ghost's
  ``__GHOST_URL__/content/images/…``) only when the import was given the old
  site's address;
- at most ``MEDIA_MAX_BYTES``, within ``IMPORT_FETCH_TIMEOUT`` seconds per
  read and three times that in all, following at most three redirects, each
  checked again;
- never an address that resolves to a loopback, private, link-local or
  otherwise non-public address (an import must not reach the server's own
  network), unless ``IMPORT_FETCH_PRIVATE`` is on, or the app is TESTING.
"""

from __future__ import annotations

import hashlib
import html
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit

import requests

from broadsheet.media.services import Limits
from broadsheet.media.storage import Store

MAX_REDIRECTS = 3
KEY_LENGTH = 300  # ImportItem.source_id
# ![alt](url "title") and <img … src="url" …>; the URL is the group named "url".
MARKDOWN_IMAGE = re.compile(r"(?P<head>!\[[^\]\n]*\]\(\s*<?)(?P<url>[^\s)>]+)")
HTML_IMAGE = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""(?P<head>\bsrc\s*=\s*)(?P<quote>["'])(?P<url>.*?)(?P=quote)""", re.I | re.S)
# An image given a new address loses its old site's other sizes (they would still be fetched
# from there).
_SIZES = re.compile(r"""\s(?:srcset|sizes)\s*=\s*(["']).*?\1""", re.IGNORECASE | re.DOTALL)


class Listing(Protocol):
    def image(self, url: str, reason: str) -> None: ...


class FetchFailed(Exception):
    """The image could not be fetched; the message says why (for the report)."""

    @property
    def unreachable(self) -> bool:
        """The host did not answer at all (its other images need not be tried)."""
        return str(self).startswith("unreachable")


@dataclass(frozen=True)
class Fetching:
    """How an import fetches images: where they go, how much and how long, from where."""

    store: Store
    limits: Limits
    timeout: float = 5.0
    allow_private: bool = False
    old_site: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], store: Store) -> Fetching:
        return cls(
            store=store,
            limits=Limits.from_config(config),
            timeout=float(config.get("IMPORT_FETCH_TIMEOUT", 5.0)),
            allow_private=bool(config.get("IMPORT_FETCH_PRIVATE") or config.get("TESTING")),
        )


def fetching_for(config: Mapping[str, Any], store: Store) -> Fetching | None:
    """How the app's imports fetch images, or None when ``IMPORT_FETCH_IMAGES`` is off."""
    return Fetching.from_config(config, store) if config.get("IMPORT_FETCH_IMAGES", True) else None


def keep(url: str, report: Listing, reason: str = "image downloads are off") -> str:
    """The URL a post should use for an image that is not fetched; listed in the report."""
    report.image(url if len(url) <= 500 else url[:500] + "…", reason)
    return url


def where_from(url: str, old_site: str | None) -> str | None:
    """The absolute http(s) address to fetch ``url`` from, or None when there is none."""
    url = url.strip()
    if url.startswith("//"):
        url = "https:" + url
    if url.startswith("__GHOST_URL__"):
        url = url[len("__GHOST_URL__") :] or "/"
    if url.startswith("/"):
        return urljoin(old_site.rstrip("/") + "/", url.lstrip("/")) if old_site else None
    try:
        parts = urlsplit(url)
    except ValueError:  # such as a broken IPv6 address
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def item_key(url: str) -> str:
    """The import item key of an image's source address (hashed when too long for the row)."""
    if len(url) <= KEY_LENGTH:
        return url
    return "sha256:" + hashlib.sha256(url.encode()).hexdigest()


def _check_host(host: str, port: int, allow_private: bool) -> None:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise FetchFailed("unreachable: the old site's name does not resolve") from None
    if allow_private:
        return
    for _family, _type, _proto, _name, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        if not ip.is_global:
            raise FetchFailed(f"refused: {host} is a private or local address")


def _name(url: str) -> str:
    last = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return last or "image"


def download(url: str, fetching: Fetching) -> tuple[bytes, str]:
    """The bytes of the image at ``url`` and its file name; raises FetchFailed."""
    deadline = time.monotonic() + 3 * fetching.timeout
    limit = fetching.limits.max_bytes
    with requests.Session() as http:
        http.trust_env = False  # no proxy from the environment: the address checked is the one
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                parts = urlsplit(url)
            except ValueError:
                raise FetchFailed("refused: not a valid address") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchFailed("refused: only http and https addresses are fetched")
            try:
                port = parts.port or (443 if parts.scheme == "https" else 80)
            except ValueError:
                raise FetchFailed("refused: the address has a bad port") from None
            _check_host(parts.hostname, port, fetching.allow_private)
            try:
                with http.get(url, stream=True, allow_redirects=False,
                              timeout=(fetching.timeout, fetching.timeout),
                              headers={"Accept": "image/*",
                                       "User-Agent": "Broadsheet-import"}) as response:  # fmt: skip
                    if response.is_redirect and response.headers.get("Location"):
                        url = urljoin(url, response.headers["Location"])
                        continue
                    if response.status_code != 200:
                        raise FetchFailed(f"the old site answered {response.status_code}")
                    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
                    if not kind.lower().startswith("image/"):
                        raise FetchFailed(f"not an image ({kind or 'no content type'})")
                    declared = response.headers.get("Content-Length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise FetchFailed(f"too big ({int(declared) / 1e6:.1f} MB; at most "
                                          f"{limit / 1e6:g} MB)")  # fmt: skip
                    data = bytearray()
                    for chunk in response.iter_content(64 * 1024):
                        data += chunk
                        if len(data) > limit:
                            raise FetchFailed(f"too big (more than {limit / 1e6:g} MB)")
                        if time.monotonic() > deadline:
                            raise FetchFailed("too slow: the download took too long")
                    return bytes(data), _name(url)
            except requests.Timeout:
                raise FetchFailed("unreachable: the old site did not answer in time") from None
            except requests.ConnectionError:
                raise FetchFailed("unreachable: no connection to the old site") from None
            except requests.RequestException as error:
                raise FetchFailed(f"unreachable: {type(error).__name__}") from None
    raise FetchFailed("too many redirects")


def rewrite_body(markdown: str, localise: Callable[[str], str]) -> str:
    """``markdown`` with each image's address (Markdown or ``<img src>``) replaced by
    ``localise(address)``; an ``<img>`` given a new address loses its ``srcset``."""

    def markdown_image(found: re.Match[str]) -> str:
        return found.group("head") + localise(found.group("url"))

    def html_image(found: re.Match[str]) -> str:
        tag = found.group(0)
        src = _SRC.search(tag)
        if src is None:
            return tag
        old = html.unescape(src.group("url"))
        new = localise(old)
        if new == old:
            return tag
        quote = src.group("quote")
        tag = (
            tag[: src.start()]
            + f"{src.group('head')}{quote}{html.escape(new)}{quote}"
            + (tag[src.end() :])
        )
        return _SIZES.sub("", tag)

    return HTML_IMAGE.sub(html_image, MARKDOWN_IMAGE.sub(markdown_image, markdown))
