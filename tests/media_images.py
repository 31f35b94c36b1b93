"""Images for the media tests, made on the spot: good ones carrying GPS, and bad ones."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112
SERIAL = 0xA431  # BodySerialNumber, in the Exif IFD
EXIF_IFD = 0x8769


def jpeg_with_gps(width: int = 1200, height: int = 800, *, orientation: int = 1) -> bytes:
    """A JPEG with a GPS position, a camera serial, a comment and the EXIF orientation."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, width // 2, height // 3))  # a blue corner: top left
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    exif.get_ifd(EXIF_IFD)[SERIAL] = "SN-0042-SECRET"
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85, exif=exif, comment=b"shot at home")
    return out.getvalue()


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (10, 120, 10, 200)).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", body)
        + _chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    data = jpeg_with_gps(1600, 1200)
    return data[: len(data) // 2]


HTML_AS_JPEG = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>'
)


def oversize(limit: int) -> bytes:
    """A real JPEG padded past ``limit`` bytes (JPEG readers ignore what follows the end)."""
    data = jpeg_with_gps(64, 64)
    return data + b"\x00" * (limit + 1 - len(data))


def has_metadata(data: bytes) -> list[str]:
    """What of the tell-tale metadata ``data`` still carries (empty: none)."""
    image = Image.open(io.BytesIO(data))
    found = []
    exif = image.getexif()
    if exif.get_ifd(GPS_IFD) or GPS_IFD in exif:
        found.append("GPS")
    if exif.get_ifd(EXIF_IFD).get(SERIAL):
        found.append("serial")
    if image.info.get("exif"):
        found.append("exif")
    if image.info.get("comment"):
        found.append("comment")
    if image.info.get("xmp"):
        found.append("xmp")
    return found
