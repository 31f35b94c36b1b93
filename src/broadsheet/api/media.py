"""The Admin API's image upload: multipart in, the image's address, size and variants out."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, json, request, url_for

from broadsheet.api import schemas
from broadsheet.api.admin import SECURITY, blp
from broadsheet.extensions import db, utcnow
from broadsheet.media import services as media
from broadsheet.media.rendering import image_details
from broadsheet.media.storage import current_store


@blp.post("/images/")
@blp.arguments(schemas.ImageUploadSchema, location="files")
@blp.response(201, schemas.ImageOneSchema)
@blp.doc(security=SECURITY)
def upload_image(files: dict[str, Any]) -> Response:
    """Upload an image for posts. It answers at once: ``state`` is ``pending`` and
    ``variants`` is empty until the worker has made them (seconds); the address works then."""
    limits = media.Limits.from_config(current_app.config)
    upload = files["file"]
    image = media.upload_image(
        db.session,
        upload.stream.read(limits.max_bytes + 1),
        name=upload.filename or "image",
        # One multipart body documents both parts; the text part is read from the form.
        alt=request.form.get("alt", "")[:2000],
        actor=g.api_actor,
        now=utcnow(),
        store=current_store(),
        limits=limits,
    )
    db.session.commit()
    address = media.image_address(image)
    body = {
        "id": image.id,
        "markdown": media.markdown_for(image),
        **image_details(
            image, store=current_store(), base=current_app.config["SITE_URL"], address=address
        ),
    }
    response = Response(json.dumps({"image": body}), status=201, mimetype="application/json")
    response.headers["Location"] = url_for(
        "media.image", uid=image.uid, name=address.rsplit("/", 1)[1], _external=False
    )
    response.cache_control.no_store = True
    return response
