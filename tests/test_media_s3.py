"""The S3 store against a real S3-protocol server on loopback (moto in server mode): the
client is boto3's own, talking HTTP; nothing is patched."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from flask import Flask
from moto.server import ThreadedMotoServer
from PIL import Image as PILImage
from sqlalchemy import func, select

from broadsheet import create_app
from broadsheet.accounts.models import Role
from broadsheet.accounts.services import create_token
from broadsheet.extensions import db
from broadsheet.media.models import Image
from broadsheet.media.storage import S3Store, current_store
from broadsheet.media.tasks import process_image
from tests import media_images as pictures
from tests.conftest import NOW, base_config

BUCKET = "broadsheet-media-test"
PUBLIC_VARIANTS = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/v/*",
    }],
}  # fmt: skip


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_app(app: Flask, database_url: str, s3_endpoint: str, tmp_path: Path) -> Iterator[Flask]:
    settings = {
        "S3_BUCKET": BUCKET,
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_REGION": "us-east-1",
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
    }
    web = create_app(base_config(tmp_path / "s3", database_url, **settings))
    bucket = _client(s3_endpoint)
    bucket.create_bucket(Bucket=BUCKET)
    # As the README sets a bucket up: readers may fetch the variants (v/…), nothing else.
    bucket.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(PUBLIC_VARIANTS))
    with web.app_context():
        yield web
        db.session.remove()
        db.engine.dispose()
    for key in _keys(bucket):
        bucket.delete_object(Bucket=BUCKET, Key=key)
    bucket.delete_bucket(Bucket=BUCKET)


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def _keys(client: Any) -> list[str]:
    listed = client.list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture
def headers(s3_app: Flask, make_user: Any) -> dict[str, str]:
    editor = make_user(Role.EDITOR, email="s3@example.com")
    _token, secret = create_token(db.session, editor, label="s3", now=NOW)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_images_go_to_the_bucket_clean_and_immutable_and_pages_point_there(
    s3_app: Flask, s3_endpoint: str, headers: dict[str, str], make_post: Any
) -> None:
    client = s3_app.test_client()
    bucket = _client(s3_endpoint)
    assert isinstance(current_store(), S3Store)
    created = client.post(
        "/api/v1/admin/images/", headers=headers, content_type="multipart/form-data",
        data={"file": (io.BytesIO(pictures.jpeg_with_gps(1000, 700)), "pier.jpg")},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    image = created.json["image"]
    source, display = _keys(bucket)
    assert source.startswith("incoming/")
    # The upload as it came (GPS and all) is not for readers, even before it is processed.
    assert requests.get(f"{s3_endpoint}/{BUCKET}/{source}", timeout=10).status_code == 403
    # Its display copy is: the address leads there until the variants are made.
    moved = client.get(image["url"].removeprefix("https://blog.example.com"))
    assert moved.status_code == 302
    assert moved.headers["Location"] == f"{s3_endpoint}/{BUCKET}/{display}"
    early = requests.get(moved.headers["Location"], timeout=10)
    assert early.status_code == 200
    assert pictures.has_metadata(early.content) == []
    assert PILImage.open(io.BytesIO(early.content)).size == (1000, 700)

    assert process_image.run(image["id"]) is True
    keys = _keys(bucket)
    assert keys, "nothing in the bucket"
    assert all(k.startswith("v/") for k in keys)  # the upload itself, GPS and all, is gone
    assert len(keys) == 6  # 480, 960 and 1000 wide, in WebP and JPEG
    for key in keys:
        head = bucket.head_object(Bucket=BUCKET, Key=key)
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
        served = requests.get(f"{s3_endpoint}/{BUCKET}/{key}", timeout=10)
        assert served.status_code == 200
        assert head["ContentType"] == served.headers["Content-Type"]
        assert pictures.has_metadata(served.content) == []
        assert PILImage.open(io.BytesIO(served.content)).format in {"JPEG", "WEBP"}

    make_post("Pier", markdown=f"![Pier]({image['url'].removeprefix('https://blog.example.com')})")
    page = client.get("/pier/").text
    assert f'src="{s3_endpoint}/{BUCKET}/v/' in page
    assert f"{s3_endpoint}/{BUCKET}/v/" in page.split("srcset=")[1]


def test_a_refused_or_rolled_back_upload_leaves_no_object(
    s3_app: Flask, s3_endpoint: str, headers: dict[str, str]
) -> None:
    client = s3_app.test_client()
    refused = client.post(
        "/api/v1/admin/images/", headers=headers, content_type="multipart/form-data",
        data={"file": (io.BytesIO(pictures.truncated_jpeg()), "cut.jpg")},
    )  # fmt: skip
    assert refused.status_code == 422
    assert _keys(_client(s3_endpoint)) == []
    assert db.session.scalar(select(func.count()).select_from(Image)) == 0
