"""An uploaded image, its resized variants, and the posts that use it.

An image is reached by a stable address (``/media/images/<uid>/<name>``) that
posts' Markdown and feature images hold; what it points at can change (a
replace) without a post changing.  Each variant is a file named by the hash
of its bytes, served with an immutable cache header.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from broadsheet.extensions import Model, utcnow


class ImageState(enum.StrEnum):
    PENDING = "pending"  # stored as uploaded; the worker has not made the variants yet
    READY = "ready"
    FAILED = "failed"  # the worker could not read it: ``error`` says why


class Image(Model):
    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_created", "created_at", "id"),
        Index("ix_images_state", "state", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The stable address's token: random, so addresses cannot be guessed in order.
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))  # the file's name, for people
    alt: Mapped[str] = mapped_column(Text, default="")
    # What the upload's bytes hash to, and what Pillow found them to be (never the name's say).
    content_hash: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(10))  # JPEG, PNG, GIF, WEBP, AVIF
    width: Mapped[int] = mapped_column(Integer)  # as shown: after the EXIF orientation
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    state: Mapped[ImageState] = mapped_column(
        Enum(
            ImageState, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]
        ),
        default=ImageState.PENDING,
    )
    # The upload as it came (metadata included): private, never served, removed once processed.
    source_key: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    variants: Mapped[list[ImageVariant]] = relationship(
        order_by="ImageVariant.width",
        cascade="all, delete-orphan",
        lazy="raise",
        passive_deletes=True,
    )

    @property
    def is_ready(self) -> bool:
        return self.state is ImageState.READY

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    def __repr__(self) -> str:
        return f"<Image {self.uid} {self.state}>"


class ImageVariant(Model):
    """One resized copy: ``width`` wide, in WebP or in the original's format."""

    __tablename__ = "image_variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(10))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(200))  # the store's name: the bytes' hash
    byte_size: Mapped[int] = mapped_column(Integer)

    @property
    def mimetype(self) -> str:
        return MIMETYPES[self.format]


class ImageUsage(Model):
    """A post uses an image (in its Markdown or as its feature image); kept on every save."""

    __tablename__ = "image_usages"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "AVIF": "avif"}
MIMETYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
}
