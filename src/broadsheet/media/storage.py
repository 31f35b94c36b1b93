"""Where image files live: a folder under instance/ (served by the app) or an S3 bucket.

A small protocol with one class per store; ``store_for`` picks one from the
settings (S3 when ``S3_BUCKET`` is set) and the app keeps it.  Variants are
named by the hash of their bytes and never change, so they are stored and
served with an immutable cache header; an upload's source (metadata and
all) is kept under ``incoming/``, which no address serves.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

from flask import current_app

IMMUTABLE = "public, max-age=31536000, immutable"
VARIANT_PREFIX = "v/"
SOURCE_PREFIX = "incoming/"


class Store(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write ``data`` under ``key`` (replacing it: same key, same bytes)."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; FileNotFoundError if there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing happens if it is already gone."""

    def url(self, key: str) -> str:
        """The address readers fetch ``key`` from (relative when the app serves it)."""

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``."""


class FolderStore:
    """Files in a folder (by default ``instance/media``), served by the app at ``/media/``."""

    def __init__(self, root: Path, public_url: str | None = None) -> None:
        self.root = root
        self.public_url = public_url

    def path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise FileNotFoundError(key)
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole then renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def url(self, key: str) -> str:
        return f"{self.public_url}/{key}" if self.public_url else f"/media/{key}"

    def keys(self, prefix: str) -> Iterator[str]:
        base = self.root / prefix
        if base.is_dir():
            for path in base.rglob("*"):
                if path.is_file() and not path.name.startswith(".upload-"):
                    yield path.relative_to(self.root).as_posix()


class S3Store:
    """An S3-compatible bucket through boto3 (AWS, MinIO, Cloudflare R2, Bucketeer, …)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        public_url: str | None,
    ) -> None:
        import boto3  # only when S3 is configured: boto3 takes a while to import

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.public_url = public_url
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
        )

    def put(self, key: str, data: bytes, content_type: str) -> None:
        extra = {"CacheControl": IMMUTABLE} if key.startswith(VARIANT_PREFIX) else {}
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **extra
        )

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None
        return bytes(answer["Body"].read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def url(self, key: str) -> str:
        if self.public_url:
            return f"{self.public_url}/{key}"
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{key}"
        region = self.region or "us-east-1"
        return f"https://{self.bucket}.s3.{region}.amazonaws.com/{key}"

    def keys(self, prefix: str) -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"])


def store_for(config: Mapping[str, Any]) -> Store:
    """The store the settings name: S3 when ``S3_BUCKET`` is set, else the folder."""
    if config.get("S3_BUCKET"):
        return S3Store(
            config["S3_BUCKET"],
            endpoint_url=config.get("S3_ENDPOINT_URL"),
            region=config.get("S3_REGION"),
            access_key_id=config.get("S3_ACCESS_KEY_ID"),
            secret_access_key=config.get("S3_SECRET_ACCESS_KEY"),
            public_url=config.get("MEDIA_PUBLIC_URL"),
        )
    return FolderStore(Path(config["MEDIA_ROOT"]), config.get("MEDIA_PUBLIC_URL"))


def current_store() -> Store:
    """The running app's store, made once per app."""
    store = current_app.extensions.get("broadsheet.media.store")
    if store is None:
        store = current_app.extensions["broadsheet.media.store"] = store_for(current_app.config)
    return cast(Store, store)
