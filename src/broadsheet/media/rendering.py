"""Posts' images as readers get them: sized, responsive, lazy below the first.

A post's HTML (rendered and sanitised when it was saved) holds images by
their stable address.  Where a page or an email shows it, ``responsive_html``
gives each of our images its ``width``/``height`` (no layout shift), a WebP
``srcset`` with ``sizes`` once the variants are ready, and ``loading="lazy"``
to every image after the first; for email, an absolute address of a variant
no wider than ``EMAIL_WIDTH``.  Other images are left as they are, but lazy.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

import lxml.html
from markupsafe import Markup, escape

from broadsheet.extensions import DbSession
from broadsheet.media.models import Image, ImageVariant
from broadsheet.media.processing import EMAIL_WIDTH, OPEN_GRAPH_WIDTH
from broadsheet.media.services import ADDRESS, images_by_uid
from broadsheet.media.storage import Store

SIZES = "(max-width: 46rem) 100vw, 46rem"  # the prose column's width


@dataclass(frozen=True)
class Shown:
    """How one of our images is shown: ``src`` (a variant in the original's format when
    ready, else its address), the WebP ``srcset``, and its size."""

    src: str
    srcset: str
    width: int
    height: int


def _pick(variants: list[ImageVariant], fmt: str, at_most: int) -> ImageVariant | None:
    """The widest variant in ``fmt`` no wider than ``at_most`` (else the narrowest)."""
    same = sorted((v for v in variants if v.format == fmt), key=lambda v: v.width)
    if not same:
        return None
    fitting = [v for v in same if v.width <= at_most]
    return fitting[-1] if fitting else same[0]


def _fallback_format(image: Image, variants: list[ImageVariant]) -> str:
    formats = {v.format for v in variants}
    return image.format if image.format in formats else "WEBP" if "WEBP" in formats else ""


def shown(image: Image, store: Store, address: str, *, at_most: int = 1600) -> Shown:
    variants = list(image.variants) if image.is_ready else []
    main = _pick(variants, _fallback_format(image, variants), at_most)
    srcset = ", ".join(f"{store.url(v.key)} {v.width}w" for v in variants if v.format == "WEBP")
    return Shown(
        src=store.url(main.key) if main else address,
        srcset=srcset,
        width=image.width,
        height=image.height,
    )


def _uid(src: str) -> str | None:
    found = ADDRESS.search(src or "")
    return found.group(1) if found else None


def responsive_html(
    session: DbSession,
    html: str,
    *,
    store: Store,
    eager_first: bool = True,
    email_base: str | None = None,
) -> Markup:
    """``html`` with its images sized and responsive (see the module's docstring).

    ``eager_first`` False makes every image lazy (something above it, a feature image,
    is the first).  ``email_base`` (the site's URL) asks for the email form.
    """
    if "<img" not in html:
        return Markup(html)  # noqa: S704 (sanitised when the post was saved)
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    tags = list(root.iter("img"))
    found = images_by_uid(session, [u for u in (_uid(t.get("src", "")) for t in tags) if u])
    for index, tag in enumerate(tags):
        image = found.get(_uid(tag.get("src", "")) or "")
        if email_base is not None:
            _for_email(tag, image, store, email_base)
            continue
        if image is not None:
            view = shown(image, store, tag.get("src", ""))
            tag.set("src", view.src)
            if view.srcset:
                tag.set("srcset", view.srcset)
                tag.set("sizes", SIZES)
            tag.set("width", str(view.width))
            tag.set("height", str(view.height))
        if index > 0 or not eager_first:
            tag.set("loading", "lazy")
        tag.set("decoding", "async")
    lead = escape(root.text) if root.text else ""
    body = "".join(lxml.html.tostring(child, encoding="unicode") for child in root)
    return Markup(lead) + Markup(body)  # noqa: S704 (our own serialisation of sanitised HTML)


def _for_email(tag: lxml.html.HtmlElement, image: Image | None, store: Store, base: str) -> None:
    width = EMAIL_WIDTH
    if image is not None:
        variants = list(image.variants) if image.is_ready else []
        chosen = _pick(variants, _fallback_format(image, variants), EMAIL_WIDTH)
        if chosen is not None:
            tag.set("src", store.url(chosen.key))
        width = min(EMAIL_WIDTH, image.width)
        tag.set("height", str(round(image.height * width / image.width)))
    elif tag.get("width", "").isdigit():
        width = min(EMAIL_WIDTH, int(tag.get("width", "")))
    tag.set("src", urljoin(base + "/", tag.get("src", "")))
    tag.set("width", str(width))
    tag.set("style", "max-width:100%;height:auto;")
    for name in ("srcset", "sizes", "loading"):
        tag.attrib.pop(name, None)


@dataclass(frozen=True)
class FeatureImage:
    shown: Shown
    alt: str
    og_url: str  # an absolute address of the 1200-px variant in a format every scraper reads
    og_width: int
    og_height: int


def feature_image(
    session: DbSession, address: str | None, *, store: Store, base: str
) -> FeatureImage | None:
    """A post's feature image as the page and its link preview show it; None when it has
    none.  An address that is not one of ours is shown as it is."""
    if not address:
        return None
    uid = _uid(address)
    image = images_by_uid(session, [uid]).get(uid) if uid else None
    if image is None:
        absolute = urljoin(base + "/", address)
        return FeatureImage(Shown(address, "", 0, 0), "", absolute, 0, 0)
    view = shown(image, store, address)
    variants = list(image.variants) if image.is_ready else []
    og = _pick(variants, "JPEG" if image.format == "JPEG" else _fallback_format(image, variants),
               OPEN_GRAPH_WIDTH)  # fmt: skip
    if og is None:
        return FeatureImage(view, image.alt, urljoin(base + "/", address), image.width,
                            image.height)  # fmt: skip
    return FeatureImage(
        view, image.alt, urljoin(base + "/", store.url(og.key)), og.width, og.height
    )


def image_details(image: Image, *, store: Store, base: str, address: str) -> dict[str, object]:
    """An image as the APIs describe it: its address, size, alt text and variants."""
    variants = list(image.variants) if image.is_ready else []
    return {
        "url": urljoin(base + "/", address),
        "width": image.width,
        "height": image.height,
        "alt": image.alt,
        "state": image.state.value,
        "variants": [
            {
                "url": urljoin(base + "/", store.url(v.key)),
                "width": v.width,
                "height": v.height,
                "format": v.format.lower(),
            }
            for v in variants
        ],
    }


def feature_details(
    session: DbSession, addresses: list[str | None], *, store: Store, base: str
) -> dict[str, dict[str, object]]:
    """The APIs' view of posts' feature images that are ours, by address (two queries)."""
    uids = {a: u for a in addresses if a and (u := _uid(a))}
    found = images_by_uid(session, list(uids.values()))
    return {
        address: image_details(found[uid], store=store, base=base, address=address)
        for address, uid in uids.items()
        if uid in found
    }
