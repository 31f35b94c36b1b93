"""Images: uploads judged by their content, nothing kept of a refused one, variants without
metadata, responsive markup on posts, usage that guards deletes, and the clean-up."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from PIL import Image as PILImage
from sqlalchemy import func, select

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_token
from broadsheet.config import ConfigError, load_settings
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.services import load_post, update_post
from broadsheet.extensions import db, utcnow
from broadsheet.media import services as media
from broadsheet.media.models import Image, ImageState, ImageUsage, ImageVariant
from broadsheet.media.rendering import responsive_html
from broadsheet.media.storage import FolderStore
from broadsheet.media.tasks import process_image
from tests import media_images as pictures
from tests.conftest import NOW
from tests.staff import PASSWORD, csrf_token, separate_client, sign_in


@pytest.fixture
def store(app: Flask) -> Iterator[FolderStore]:
    """The app's folder store, empty at the start of each test."""
    root = Path(app.config["MEDIA_ROOT"])
    shutil.rmtree(root, ignore_errors=True)
    yield FolderStore(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def writer(make_user: Any) -> User:
    return make_user(Role.AUTHOR, email="writer@example.com", password=PASSWORD)


@pytest.fixture
def staff(app: Flask, writer: User) -> FlaskClient:
    client = separate_client(app)
    sign_in(client, writer.email)
    return client


def upload(client: FlaskClient, data: bytes, name: str = "photo.jpg", alt: str = "") -> Any:
    token = csrf_token(client.get("/admin/media/").text)
    return client.post(
        "/admin/media/",
        data={"csrf_token": token, "alt": alt, "file": (io.BytesIO(data), name)},
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )


def stored(store: FolderStore) -> list[str]:
    return sorted(store.keys(""))


def uploaded(client: FlaskClient, data: bytes, **kwargs: Any) -> Image:
    response = upload(client, data, **kwargs)
    assert response.status_code == 201, response.text
    image = db.session.get(Image, response.json["id"])
    assert image is not None
    return image


def processed(client: FlaskClient, data: bytes, **kwargs: Any) -> Image:
    image = uploaded(client, data, **kwargs)
    assert process_image.run(image.id) is True
    db.session.expire_all()
    return image


HTML_OR_SVG = "SVG and HTML files are not accepted"
BAD_INPUTS = [
    pytest.param(pictures.HTML_AS_JPEG, "photo.jpg", HTML_OR_SVG, id="html-as-jpg"),
    pytest.param(b"GIF89a not really", "x.gif", "not a JPEG, PNG, GIF or WebP", id="garbage"),
    pytest.param(pictures.SVG_WITH_SCRIPT, "logo.svg", HTML_OR_SVG, id="svg-script"),
    pytest.param(pictures.png_claiming(30000, 30000), "bomb.png", "too many pixels", id="bomb"),
    pytest.param(pictures.png_claiming(10000, 7000), "big.png", "too many pixels", id="ours"),
    pytest.param(pictures.truncated_jpeg(), "cut.jpg", "damaged or cut short", id="truncated-jpeg"),
    pytest.param(b"", "empty.jpg", "choose an image", id="empty"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "name", "message"), BAD_INPUTS)
def test_a_bad_upload_is_refused_clearly_and_nothing_is_kept(
    staff: FlaskClient, store: FolderStore, data: bytes, name: str, message: str
) -> None:
    response = upload(staff, data, name=name)
    assert response.status_code in (400, 422), response.text
    assert message in response.json["error"]
    assert db.session.scalar(select(func.count()).select_from(Image)) == 0
    assert stored(store) == []


def test_an_oversize_upload_is_refused_and_nothing_is_kept(
    app: Flask, staff: FlaskClient, store: FolderStore
) -> None:
    # The body is built here, in memory: the test client would spool one this big to a
    # temporary file that it never closes.
    token = csrf_token(staff.get("/admin/media/").text)
    boundary = "media-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="huge.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + pictures.oversize(app.config["MEDIA_MAX_BYTES"])
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = staff.post(
        "/admin/media/",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 422
    assert "at most 20 MB is accepted" in response.json["error"]
    assert db.session.scalar(select(func.count()).select_from(Image)) == 0
    assert stored(store) == []


def test_the_form_without_javascript_shows_the_refusal_on_the_page(
    staff: FlaskClient, store: FolderStore
) -> None:
    token = csrf_token(staff.get("/admin/media/").text)
    response = staff.post(
        "/admin/media/",
        data={"csrf_token": token, "file": (io.BytesIO(pictures.SVG_WITH_SCRIPT), "a.svg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "SVG and HTML files are not accepted" in response.text
    assert stored(store) == []


def test_an_upload_answers_at_once_and_the_worker_makes_clean_variants(
    staff: FlaskClient, store: FolderStore
) -> None:
    # 1200 x 800, turned a quarter by its EXIF: readers see it 800 wide and 1200 high.
    response = upload(staff, pictures.jpeg_with_gps(orientation=6), alt="A red wall")
    assert response.status_code == 201
    answer = response.json
    assert (answer["width"], answer["height"], answer["state"]) == (800, 1200, "pending")
    assert re.fullmatch(
        r"!\[A red wall\]\(/media/images/[\w-]{16}/photo\.jpg\)", answer["markdown"]
    )
    # Nothing with metadata is ever served: the address shows a clean display copy until then.
    early = staff.get(answer["url"])
    assert early.status_code == 302
    assert early.headers["Location"].startswith("/media/v/")
    assert sorted(k.split("/")[0] for k in stored(store)) == ["incoming", "v"]

    assert process_image.run(answer["id"]) is True
    db.session.expire_all()
    image = db.session.get(Image, answer["id"])
    assert image is not None
    assert image.state is ImageState.READY
    variants = media.variants_of(db.session, image)
    assert sorted({(v.width, v.format) for v in variants}) == [
        (480, "JPEG"),
        (480, "WEBP"),
        (800, "JPEG"),
        (800, "WEBP"),
    ]  # fmt: skip  (never wider than the original: no 960 and up)
    assert not any(k.startswith("incoming/") for k in stored(store))  # the source is gone
    reader = staff.application.test_client()
    for variant in variants:
        served = reader.get(f"/media/{variant.key}")
        assert served.status_code == 200
        assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert served.mimetype == variant.mimetype
        assert pictures.has_metadata(served.data) == [], variant.key
        picture = PILImage.open(io.BytesIO(served.data))
        assert picture.size == (variant.width, variant.height)
        assert picture.height > picture.width  # turned as the EXIF said
        served.close()
    # The stable address now leads to the widest variant in the original's format.
    moved = reader.get(answer["url"])
    assert moved.status_code == 302
    assert moved.headers["Location"].endswith(".jpg")
    # Processing again (a message delivered twice) changes nothing.
    assert process_image.run(answer["id"]) is False
    assert len(media.variants_of(db.session, image)) == 4


def fetched(client: FlaskClient, address: str) -> tuple[str, PILImage.Image, bytes]:
    """Where ``address`` leads, and the picture found there."""
    moved = client.get(address)
    assert moved.status_code == 302, moved.status_code
    location = moved.headers["Location"]
    served = client.get(location)
    assert served.status_code == 200
    data = served.data
    served.close()
    return location, PILImage.open(io.BytesIO(data)), data


def test_right_after_upload_the_address_shows_a_clean_turned_display_copy(
    staff: FlaskClient, store: FolderStore
) -> None:
    # 3000 x 2000 as stored, turned a quarter by its EXIF: shown 2000 wide and 3000 high.
    image = uploaded(staff, pictures.jpeg_with_gps(3000, 2000, orientation=6), name="cliff.jpg")
    address = media.image_address(image)
    reader = staff.application.test_client()
    moved = reader.get(address)
    assert moved.status_code == 302
    # Briefly cacheable only: the address moves to the variants within seconds.
    assert moved.headers["Cache-Control"] == "public, max-age=5"
    location, picture, data = fetched(reader, address)
    assert picture.format == "JPEG"
    assert pictures.has_metadata(data) == []
    assert picture.getexif() == {}
    assert picture.width <= 1200
    assert picture.size == (1200, 1800)  # turned: taller than wide, as readers see it
    # The blue corner was top left as stored; a quarter turn clockwise puts it top right.
    rgb = picture.convert("RGB")
    top_right, top_left = rgb.getpixel((1190, 10)), rgb.getpixel((10, 10))
    assert isinstance(top_right, tuple)
    assert isinstance(top_left, tuple)
    assert top_right[2] > 150 > top_right[0]
    assert top_left[0] > 150 > top_left[2]

    # Once processed, the address leads to the variants and the display copy is gone.
    assert process_image.run(image.id) is True
    db.session.expire_all()
    variants = {v.key for v in media.variants_of(db.session, image)}
    after, _picture, _data = fetched(reader, address)
    assert after.removeprefix("/media/") in variants
    assert reader.get(address).headers["Cache-Control"] == "public, max-age=300"
    assert set(stored(store)) == variants
    assert location.removeprefix("/media/") not in variants
    assert reader.get(location).status_code == 404


def test_a_png_shows_as_a_small_webp_keeping_its_transparency_until_processed(
    staff: FlaskClient, store: FolderStore
) -> None:
    image = uploaded(staff, pictures.png(2400, 1000), name="chart.png")
    _location, picture, data = fetched(staff.application.test_client(), media.image_address(image))
    assert (picture.format, picture.size, picture.mode) == ("WEBP", (1200, 500), "RGBA")
    assert pictures.has_metadata(data) == []
    # The admin's page of the image shows it too, saying the sizes are being made.
    page = staff.get(f"/admin/media/{image.id}/").text
    assert 'class="media-preview" src="/media/v/' in page
    assert "Its sizes are being made" in page
    assert "Sizes (" not in page


def test_deleting_a_pending_image_removes_its_display_copy(
    staff: FlaskClient, store: FolderStore
) -> None:
    image = uploaded(staff, pictures.jpeg_with_gps(), name="gone.jpg")
    assert sorted(k.split("/")[0] for k in stored(store)) == ["incoming", "v"]
    token = csrf_token(staff.get(f"/admin/media/{image.id}/").text)
    image_id = image.id
    assert (
        staff.post(f"/admin/media/{image_id}/delete", data={"csrf_token": token}).status_code == 302
    )
    db.session.expire_all()
    assert db.session.get(Image, image_id) is None
    assert stored(store) == []
    assert db.session.scalar(select(func.count()).select_from(ImageVariant)) == 0


def test_a_replace_shows_the_new_pictures_display_copy_at_once(
    staff: FlaskClient, store: FolderStore
) -> None:
    image = processed(staff, pictures.png(640, 480), name="chart.png")
    old = {v.key for v in media.variants_of(db.session, image)}
    token = csrf_token(staff.get(f"/admin/media/{image.id}/").text)
    response = staff.post(
        f"/admin/media/{image.id}/replace",
        data={"csrf_token": token, "file": (io.BytesIO(pictures.jpeg_with_gps(900, 600)), "n.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    db.session.expire_all()
    _where, picture, data = fetched(staff.application.test_client(), media.image_address(image))
    assert (picture.format, picture.size) == ("JPEG", (900, 600))
    assert pictures.has_metadata(data) == []
    assert not old & set(stored(store))  # the old picture's files went with the replace


def test_a_post_shows_its_images_responsive_sized_and_lazy_below_the_first(
    staff: FlaskClient, store: FolderStore, make_post: Any
) -> None:
    first = processed(staff, pictures.jpeg_with_gps(2000, 1000), alt="First")
    second = processed(staff, pictures.png(640, 480), name="chart.png", alt="Chart")
    markdown = f"Intro.\n\n{media.markdown_for(first)}\n\nMore.\n\n{media.markdown_for(second)}\n"
    make_post("With pictures", markdown=markdown)
    page = staff.application.test_client().get("/with-pictures/").text
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) == 2
    lead, below = images
    assert 'width="2000" height="1000"' in lead
    assert 'loading="lazy"' not in lead
    assert re.search(r'srcset="[^"]*480w, [^"]*960w, [^"]*1200w, [^"]*1600w, [^"]*2000w"', lead)
    assert 'sizes="' in lead
    assert ".webp 480w" in lead
    assert 'width="640" height="480"' in below
    assert 'loading="lazy"' in below
    assert re.search(r'src="/media/v/[0-9a-f]{2}/[0-9a-f]{40}\.png"', below)


def test_open_graph_uses_the_1200_variant_and_the_api_lists_the_feature_images_variants(
    app: Flask, staff: FlaskClient, store: FolderStore, make_post: Any, writer: User
) -> None:
    image = processed(staff, pictures.jpeg_with_gps(3000, 2000), alt="Harbour")
    post = make_post("Harbour", authors=[writer])
    media.choose_feature_image(db.session, post, media.image_address(image), actor=OPERATOR)
    db.session.commit()
    page = staff.application.test_client().get("/harbour/").text
    og = re.search(r'<meta property="og:image" content="([^"]+)">', page)
    assert og
    assert og.group(1).startswith("https://blog.example.com/media/v/")
    assert '<meta property="og:image:width" content="1200">' in page
    assert 'class="post__image"' in page
    assert 'fetchpriority="high"' in page
    body = staff.application.test_client().get(f"/api/v1/posts/{post.id}/").json["post"]
    details = body["feature_image_details"]
    assert details["width"] == 3000
    assert details["alt"] == "Harbour"
    assert {(v["width"], v["format"]) for v in details["variants"]} >= {
        (1200, "jpeg"),
        (2400, "webp"),
    }
    assert all(
        v["url"].startswith("https://blog.example.com/media/v/") for v in details["variants"]
    )


def test_an_email_gets_absolute_addresses_no_wider_than_600(
    staff: FlaskClient, store: FolderStore, app: Flask
) -> None:
    image = processed(staff, pictures.jpeg_with_gps(2000, 1000))
    html = f'<p><img src="{media.image_address(image)}" alt="x"></p>'
    email = str(responsive_html(db.session, html, store=store, email_base=app.config["SITE_URL"]))
    assert re.search(r'src="https://blog\.example\.com/media/v/\w\w/\w+\.jpg"', email)
    assert 'width="600"' in email
    assert 'height="300"' in email
    assert "srcset" not in email
    assert "lazy" not in email


def test_delete_is_refused_while_a_post_uses_the_image_naming_the_posts(
    staff: FlaskClient, store: FolderStore, make_post: Any, writer: User
) -> None:
    image = processed(staff, pictures.png())
    post = make_post("Uses it", markdown=f"{media.markdown_for(image)}", authors=[writer])
    page = staff.get(f"/admin/media/{image.id}/")
    token = csrf_token(page.text)
    assert "Used in 1 post" in page.text
    assert "Uses it" in page.text
    refused = staff.post(f"/admin/media/{image.id}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert "is used in 1 post: “Uses it”" in refused.text
    assert db.session.get(Image, image.id) is not None
    assert stored(store)

    # The post stops using it: now it can go, files and all.
    post = load_post(db.session, post.id)
    update_post(db.session, post, actor=OPERATOR, expected_version=post.version, now=NOW,
                title=post.title, markdown="No picture now.")  # fmt: skip
    db.session.commit()
    assert "not used" in staff.get("/admin/media/").text
    image_id = image.id
    deleted = staff.post(f"/admin/media/{image_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 302
    db.session.expire_all()
    assert db.session.get(Image, image_id) is None
    assert stored(store) == []


def test_deleting_a_post_keeps_an_image_another_post_uses(
    staff: FlaskClient, store: FolderStore, make_post: Any
) -> None:
    image = processed(staff, pictures.png())
    one = make_post("One", markdown=media.markdown_for(image))
    make_post("Two", markdown=media.markdown_for(image))
    db.session.delete(db.session.get(Post, one.id))
    db.session.commit()
    assert [p.title for p in media.using_posts(db.session, image)] == ["Two"]
    assert db.session.scalar(select(func.count()).select_from(ImageUsage)) == 1


def test_the_library_searches_names_and_alt_text(staff: FlaskClient, store: FolderStore) -> None:
    uploaded(staff, pictures.png(), name="harbour.png", alt="Boats at dusk")
    uploaded(staff, pictures.png(), name="cat.png", alt="A sleeping cat")
    assert "cat.png" in (page := staff.get("/admin/media/?q=sleeping").text)
    assert "harbour.png" not in page
    assert "harbour.png" in staff.get("/admin/media/?q=HARBOUR").text


def test_replace_keeps_the_address_and_swaps_the_picture(
    staff: FlaskClient, store: FolderStore
) -> None:
    image = processed(staff, pictures.png(640, 480), name="chart.png")
    old = {v.key for v in media.variants_of(db.session, image)}
    token = csrf_token(staff.get(f"/admin/media/{image.id}/").text)
    new = io.BytesIO(pictures.jpeg_with_gps(900, 600))
    response = staff.post(
        f"/admin/media/{image.id}/replace",
        data={"csrf_token": token, "file": (new, "new.jpg")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert process_image.run(image.id) is True
    db.session.expire_all()
    fresh = db.session.get(Image, image.id)
    assert fresh is not None
    assert (fresh.width, fresh.format, fresh.uid) == (900, "JPEG", image.uid)
    keys = {v.key for v in media.variants_of(db.session, fresh)}
    assert not old & keys
    assert set(stored(store)) == keys  # the old files are gone


def test_a_failed_transaction_leaves_no_file_behind(
    app: Flask, store: FolderStore, writer: User
) -> None:
    media.upload_image(
        db.session, pictures.png(), name="a.png", actor=writer, now=utcnow(), store=store,
        limits=media.Limits.from_config(app.config),
    )  # fmt: skip
    assert stored(store)
    db.session.rollback()
    assert stored(store) == []
    assert db.session.scalar(select(func.count()).select_from(Image)) == 0


def test_media_gc_removes_old_unused_uploads_and_says_which(
    runner: FlaskCliRunner, staff: FlaskClient, store: FolderStore, make_post: Any
) -> None:
    old_unused = processed(staff, pictures.png(), name="forgotten.png")
    old_used = processed(staff, pictures.png(), name="kept.png")
    fresh = uploaded(staff, pictures.png(), name="just-now.png")
    make_post("Keeps one", markdown=media.markdown_for(old_used))
    for image in (old_unused, old_used):
        db.session.get(Image, image.id).created_at = utcnow() - timedelta(days=2)  # type: ignore[union-attr]
    db.session.commit()
    result = runner.invoke(args=["media", "gc"])
    assert result.exit_code == 0, result.output
    assert "removed forgotten.png" in result.output
    assert "Removed 1 unused image(s)." in result.output
    db.session.expire_all()
    assert {i.name for i in db.session.scalars(select(Image))} == {"kept.png", "just-now.png"}
    assert fresh.source_key in stored(store)
    kept = {v.key for v in db.session.scalars(select(ImageVariant))}
    assert set(stored(store)) == kept | {fresh.source_key}


def test_the_admin_api_uploads_an_image_and_refuses_bad_ones(
    app: Flask, store: FolderStore, writer: User
) -> None:
    _token, secret = create_token(db.session, writer, label="images", now=NOW)
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    created = client.post(
        "/api/v1/admin/images/", headers=headers, content_type="multipart/form-data",
        data={"file": (io.BytesIO(pictures.png(300, 200)), "diagram.png"), "alt": "A diagram"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    image = created.json["image"]
    assert (image["width"], image["height"], image["state"]) == (300, 200, "pending")
    assert image["url"].startswith("https://blog.example.com/media/images/")
    assert image["markdown"].startswith("![A diagram](/media/images/")
    refused = client.post(
        "/api/v1/admin/images/", headers=headers, content_type="multipart/form-data",
        data={"file": (io.BytesIO(pictures.HTML_AS_JPEG), "x.jpg")},
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.mimetype == "application/problem+json"
    assert "SVG and HTML files are not accepted" in refused.text
    assert db.session.scalar(select(func.count()).select_from(Image)) == 1


def test_the_editor_sets_a_feature_image_from_the_library_or_a_file(
    staff: FlaskClient, store: FolderStore, make_post: Any, writer: User
) -> None:
    image = processed(staff, pictures.png(), name="cover.png")
    post = make_post("Draft", status=PostStatus.DRAFT, authors=[writer])
    page = staff.get(f"/admin/posts/{post.id}/")
    assert "cover.png" in page.text
    form = {
        "csrf_token": csrf_token(page.text), "title": "Draft", "markdown": "Text.",
        "version": str(post.version), "action": "save",
        "feature_image": media.image_address(image),
    }  # fmt: skip
    assert staff.post(f"/admin/posts/{post.id}/", data=form).status_code == 302
    db.session.expire_all()
    saved = db.session.get(Post, post.id)
    assert saved is not None
    assert saved.feature_image == media.image_address(image)
    assert [p.id for p in media.using_posts(db.session, image)] == [post.id]

    page = staff.get(f"/admin/posts/{post.id}/")
    form.update(csrf_token=csrf_token(page.text), version=str(saved.version), feature_image="")
    form["feature_image_file"] = (io.BytesIO(pictures.png(200, 100)), "upload.png")  # type: ignore[assignment]
    response = staff.post(f"/admin/posts/{post.id}/", data=form, content_type="multipart/form-data")
    assert response.status_code == 302
    db.session.expire_all()
    saved = db.session.get(Post, post.id)
    assert saved is not None
    assert saved.feature_image is not None
    assert saved.feature_image.endswith("/upload.png")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"S3_BUCKET": "Not_A_Bucket", "S3_REGION": "eu-west-1"}, "S3_BUCKET is 'Not_A_Bucket'"),
        ({"S3_BUCKET": "media"}, "S3_REGION is not set; S3_BUCKET needs it"),
        ({"S3_BUCKET": "media", "S3_REGION": "eu-west-1", "S3_ACCESS_KEY_ID": "AK"},
         "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together"),
        ({"S3_REGION": "eu-west-1"}, "S3_REGION is set but S3_BUCKET is not"),
        ({"S3_BUCKET": "media", "S3_ENDPOINT_URL": "minio:9"}, "S3_ENDPOINT_URL is 'minio:9'"),
        ({"MEDIA_MAX_BYTES": "20MB"}, "MEDIA_MAX_BYTES is '20MB', not a whole number"),
        ({"MEDIA_PUBLIC_URL": "cdn.example.com"}, "MEDIA_PUBLIC_URL is 'cdn.example.com'"),
    ],
)  # fmt: skip
def test_a_bad_media_setting_stops_start_up_naming_it(
    tmp_path: Path, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(settings, tmp_path)
