"""Pillow's part: judge an upload by its bytes, and make the variants readers get.

``inspect`` is quick (the header, and for a JPEG a decode at a fraction of its
size, which still reads every byte, so a truncated file is caught) and runs
in the upload request, where it also makes the display copy the image's
address shows until the variants are ready; ``make_variants`` does the heavy
work in the worker.
"""

from __future__ import annotations

import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError, features

# Widths readers' screens ask for; a 1200-px one for link previews (Open Graph).
WIDTHS = (480, 960, 1200, 1600, 2400)
OPEN_GRAPH_WIDTH = 1200
DISPLAY_WIDTH = 1200  # the display copy made at upload, shown until the variants are ready
EMAIL_WIDTH = 600  # what mail clients show comfortably; the emails' images are no wider
ORIENTATION = 0x0112
QUALITY = {"JPEG": 82, "WEBP": 80, "AVIF": 60}
ENCODERS = min(4, os.cpu_count() or 1)


def accepted_formats() -> frozenset[str]:
    """JPEG, PNG, GIF and WebP; AVIF too where the installed Pillow reads it."""
    formats = {"JPEG", "PNG", "GIF", "WEBP"}
    if features.check("avif"):
        formats.add("AVIF")
    return frozenset(formats)


class Refused(ValueError):
    """The bytes are not an image Broadsheet takes; the message says why, for the writer."""


@dataclass(frozen=True)
class Made:
    format: str
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Inspected:
    format: str
    width: int  # as shown, after the EXIF orientation
    height: int
    display: Made  # at most DISPLAY_WIDTH wide, oriented, no metadata: shown until processed


def _open(data: bytes, max_pixels: int) -> PILImage.Image:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml", b"<!doctype", b"<html")) or b"<svg" in head:
        raise Refused("SVG and HTML files are not accepted; upload a JPEG, PNG, GIF or WebP")
    with warnings.catch_warnings():
        # Pillow warns past its own limit and refuses past twice that; ours is checked below.
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            image = PILImage.open(io.BytesIO(data), formats=sorted(accepted_formats()))
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
            raise Refused(too_many_pixels(max_pixels)) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise Refused("this file is not a JPEG, PNG, GIF or WebP image") from None
    if image.width * image.height > max_pixels:
        raise Refused(too_many_pixels(max_pixels))
    return image


def too_many_pixels(max_pixels: int) -> str:
    return f"the image has too many pixels (at most {max_pixels / 1e6:g} million)"


def inspect(data: bytes, *, max_pixels: int) -> Inspected:
    """What ``data`` is, judged by its content, with its display copy; raises Refused with
    the reason."""
    image = _open(data, max_pixels)
    fmt = str(image.format)
    turned = image.getexif().get(ORIENTATION) in (5, 6, 7, 8)
    width, height = (image.height, image.width) if turned else image.size
    try:
        if fmt == "JPEG":
            # Decoded at the smallest DCT scale still covering the display copy (a quarter or
            # an eighth for a camera's photo): quick, and every byte is still read.
            scale = min(1.0, DISPLAY_WIDTH / width)
            image.draft(
                "RGB", (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            )
        image.load()
        display = _display_copy(image, fmt)
    except (OSError, ValueError, SyntaxError, EOFError):
        raise Refused("the image is damaged or cut short; upload it again") from None
    return Inspected(format=fmt, width=width, height=height, display=display)


def _display_copy(image: PILImage.Image, original_format: str) -> Made:
    """``image`` (loaded) turned as its EXIF says, at most DISPLAY_WIDTH wide, with no
    metadata but its colour profile: a JPEG for a JPEG, else a WebP (transparency kept)."""
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    if image.width > DISPLAY_WIDTH:
        # Bilinear: a preview seen for seconds; it takes half the time bicubic does.
        image.thumbnail((DISPLAY_WIDTH, image.height), PILImage.Resampling.BILINEAR)
    image.info = {"icc_profile": icc} if icc else {}
    fmt = "JPEG" if original_format == "JPEG" else "WEBP"
    return Made(fmt, image.width, image.height, _encode(_for_format(image, fmt), fmt))


def _target_widths(width: int) -> list[int]:
    """The standard widths the image can fill, never upscaled; its own width if narrower."""
    widths = [w for w in WIDTHS if w <= width]
    if width < WIDTHS[-1] and width not in widths:
        widths.append(width)
    return sorted(widths)


def _encode(image: PILImage.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    options: dict[str, object] = {}
    if fmt in QUALITY:
        options["quality"] = QUALITY[fmt]
    if fmt == "WEBP":
        options["method"] = 2  # the encoder's effort: 4 (its default) takes twice as long
    # No exif=, no xmp=, no icc_profile beyond the colour profile: nothing else is written.
    icc = image.info.get("icc_profile")
    if icc:
        options["icc_profile"] = icc
    image.save(out, format=fmt, **options)
    return out.getvalue()


def _for_format(image: PILImage.Image, fmt: str) -> PILImage.Image:
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        return image.convert("RGB")
    if fmt == "GIF" and image.mode not in ("P", "L"):
        return image.convert("P", palette=PILImage.Palette.ADAPTIVE)
    return image


def make_variants(data: bytes, *, max_pixels: int) -> list[Made]:
    """Every variant of ``data``: each width in WebP and in the original's format, oriented
    as the EXIF said and carrying no metadata at all (GPS, camera serial, comments)."""
    image = _open(data, max_pixels)
    original_format = str(image.format)
    # A GIF's first frame only: variants are still pictures.
    exif_orientation = image.getexif().get(ORIENTATION, 1)
    turned = exif_orientation in (5, 6, 7, 8)
    shown_width = image.height if turned else image.width
    widths = _target_widths(shown_width)
    if original_format == "JPEG":
        # Decode at the smallest scale that still covers the widest variant (much faster).
        # (draft picks the smallest DCT scale whose result is at least the size asked.)
        scale = widths[-1] / shown_width
        image.draft("RGB", (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    image.load()
    icc = image.info.get("icc_profile")
    image = ImageOps.exif_transpose(image)
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    image.info = {"icc_profile": icc} if icc else {}
    formats = ["WEBP"] if original_format == "WEBP" else ["WEBP", original_format]
    if original_format == "AVIF" and not features.check("avif"):
        formats = ["WEBP", "JPEG"]
    sized: list[PILImage.Image] = []
    source = image
    for width in reversed(widths):
        height = max(1, round(source.height * width / source.width))
        resized = (
            source
            if width == source.width
            else source.resize((width, height), PILImage.Resampling.LANCZOS, reducing_gap=2.0)
        )
        resized.info = image.info
        sized.append(resized)
        source = resized  # each smaller one from the one above it: less to read

    def encode(job: tuple[PILImage.Image, str]) -> Made:
        picture, fmt = job
        return Made(fmt, picture.width, picture.height, _encode(_for_format(picture, fmt), fmt))

    # Pillow's encoders let go of the GIL: the encodings run side by side on the cores.
    with ThreadPoolExecutor(max_workers=ENCODERS) as pool:
        made = list(pool.map(encode, [(p, fmt) for p in sized for fmt in formats]))
    return sorted(made, key=lambda m: (m.width, m.format))
