"""The media library: uploads (a plain form, or the editor's script asking for JSON), each
image's page with its alt text, replace and delete, and the editor's feature-image picker."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from broadsheet.accounts.models import User
from broadsheet.accounts.permissions import Action, require
from broadsheet.admin.blueprint import bp
from broadsheet.admin.door import actor, page, show_error
from broadsheet.admin.forms import AltForm, ButtonForm, ImageUploadForm, ReplaceForm
from broadsheet.content.models import Post
from broadsheet.errors import DomainError, Invalid
from broadsheet.extensions import db, utcnow
from broadsheet.media import services as media
from broadsheet.media.models import Image, ImageState
from broadsheet.media.rendering import shown
from broadsheet.media.storage import Store, current_store

PICKER_SIZE = 100  # the newest images the feature-image picker offers


def _limits() -> media.Limits:
    return media.Limits.from_config(current_app.config)


def _read(upload: FileStorage | None) -> tuple[bytes, str]:
    if upload is None or not upload.filename:
        return b"", ""
    # One byte past the limit is enough to know it is too big, without reading it all.
    return upload.stream.read(_limits().max_bytes + 1), upload.filename


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) == (
        "application/json"
    )


def image_json(image: Image) -> dict[str, Any]:
    address = media.image_address(image)
    return {
        "id": image.id,
        "url": address,
        "width": image.width,
        "height": image.height,
        "alt": image.alt,
        "markdown": media.markdown_for(image),
        "state": image.state.value,
    }


def _library(form: ImageUploadForm, status: int = 200) -> ResponseReturnValue:
    query = request.args.get("q", "")
    number = max(1, request.args.get("page", 1, type=int))
    items, more = media.search_images(db.session, actor=actor(), query=query, number=number)
    store = current_store()
    return page(
        "media.html",
        status,
        items=items,
        thumbnails={i.image.id: shown(i.image, store, "", at_most=480).src for i in items},
        addresses={i.image.id: media.image_address(i.image) for i in items},
        form=form,
        query=query,
        number=number,
        more=more,
    )


@bp.get("/media/")
def media_library() -> ResponseReturnValue:
    return _library(ImageUploadForm())


@bp.post("/media/")
def upload_media() -> ResponseReturnValue:
    """Upload one image: the library's form (redirects) or the editor's script (JSON)."""
    form = ImageUploadForm()
    if not form.validate_on_submit():
        if _wants_json():
            return jsonify(error=_form_errors(form)), 400
        return _library(form, 422)
    data, name = _read(form.file.data)
    try:
        image = media.upload_image(
            db.session, data, name=name, alt=form.alt.data or "", actor=actor(), now=utcnow(),
            store=current_store(), limits=_limits(),
        )  # fmt: skip
        db.session.commit()
    except DomainError as error:
        if _wants_json():
            db.session.rollback()
            return jsonify(error=error.message), error.status
        show_error(error, form)
        return _library(form, error.status)
    if _wants_json():
        return jsonify(image_json(image)), 201
    flash(f"Uploaded “{image.name}”. Its sizes are being made; it shows as it is until then.")
    return redirect(url_for("admin.media_image", image_id=image.id))


def _form_errors(form: ImageUploadForm) -> str:
    return "; ".join(f"{name}: {', '.join(errors)}" for name, errors in form.errors.items())


def _preview(image: Image, store: Store) -> str | None:
    """The picture the page shows: a variant, or while they are made the display copy."""
    if image.is_ready:
        return shown(image, store, "", at_most=960).src
    if image.state is ImageState.PENDING:
        display = media.variants_of(db.session, image)
        return store.url(display[-1].key) if display else None
    return None


def _image_page(image: Image, status: int = 200, **forms: Any) -> ResponseReturnValue:
    store = current_store()
    return page(
        "media_image.html",
        status,
        image=image,
        preview=_preview(image, store),
        variants=media.variants_of(db.session, image) if image.is_ready else [],
        address=media.image_address(image),
        markdown=media.markdown_for(image),
        posts=media.using_posts(db.session, image),
        url_of=store.url,
        states=ImageState,
        alt_form=forms.get("alt_form") or AltForm(alt=image.alt),
        replace_form=forms.get("replace_form") or ReplaceForm(),
        button=ButtonForm(),
    )


@bp.get("/media/<int:image_id>/")
def media_image(image_id: int) -> ResponseReturnValue:
    return _image_page(media.find_image(db.session, image_id, actor=actor()))


@bp.post("/media/<int:image_id>/")
def edit_media(image_id: int) -> ResponseReturnValue:
    image = media.find_image(db.session, image_id, actor=actor())
    form = AltForm()
    if not form.validate_on_submit():
        return _image_page(image, 422, alt_form=form)
    try:
        media.edit_image(db.session, image, alt=form.alt.data or "", actor=actor(), now=utcnow())
        db.session.commit()
    except DomainError as error:
        show_error(error, form)
        return _image_page(image, error.status, alt_form=form)
    flash("Saved the alt text.", "info")
    return redirect(url_for("admin.media_image", image_id=image_id))


@bp.post("/media/<int:image_id>/replace")
def replace_media(image_id: int) -> ResponseReturnValue:
    image = media.find_image(db.session, image_id, actor=actor())
    form = ReplaceForm()
    if not form.validate_on_submit():
        return _image_page(image, 422, replace_form=form)
    data, _name = _read(form.file.data)
    try:
        media.replace_image(
            db.session, image, data, actor=actor(), now=utcnow(), store=current_store(),
            limits=_limits(),
        )  # fmt: skip
        db.session.commit()
    except DomainError as error:
        show_error(error, form)
        image = media.find_image(db.session, image_id, actor=actor())
        return _image_page(image, error.status, replace_form=form)
    flash("Replaced. Posts using it show the new picture once its sizes are made.", "info")
    return redirect(url_for("admin.media_image", image_id=image_id))


@bp.post("/media/<int:image_id>/delete")
def delete_media(image_id: int) -> ResponseReturnValue:
    image = media.find_image(db.session, image_id, actor=actor())
    if not ButtonForm().validate_on_submit():
        return _image_page(image, 400)
    name = image.name
    try:
        media.delete_image(db.session, image, actor=actor(), store=current_store())
        db.session.commit()
    except DomainError as error:
        show_error(error)
        image = media.find_image(db.session, image_id, actor=actor())
        return _image_page(image, error.status)
    flash(f"Deleted “{name}”.", "info")
    return redirect(url_for("admin.media_library"))


# The editor's feature-image picker ----------------------------------------------------------


def picker_choices(post: Post | None) -> list[tuple[str, str]]:
    """The picker's options: none, the newest images, and the post's own if it is older."""
    require(actor(), Action.VIEW_ADMIN)
    images = db.session.scalars(
        select(Image).order_by(Image.created_at.desc(), Image.id.desc()).limit(PICKER_SIZE)
    )
    choices = [("", "No feature image")]
    choices += [(media.image_address(i), f"{i.name} ({i.width} by {i.height})") for i in images]
    current = post.feature_image if post is not None else None
    if current and current not in {value for value, _ in choices}:
        choices.append((current, current))
    return choices


def apply_feature_image(post: Post, *, user: User) -> None:
    """The picker's choice for ``post``: an uploaded file wins over the library's choice.
    Nothing changes when the form did not carry the picker.  Raises DomainError."""
    upload = request.files.get("feature_image_file")
    if upload is not None and upload.filename:
        data, name = _read(upload)
        try:
            image = media.upload_image(
                db.session, data, name=name, actor=user, now=utcnow(), store=current_store(),
                limits=_limits(),
            )  # fmt: skip
        except Invalid as error:
            raise Invalid({"feature_image": error.fields.get("file", error.message)}) from None
        address: str | None = media.image_address(image)
    elif "feature_image" in request.form:
        address = request.form.get("feature_image") or None
    else:
        return
    media.choose_feature_image(db.session, post, address, actor=user)


def feature_preview(post: Post | None) -> str | None:
    """A small picture of the post's feature image for the editor, if it has one of ours."""
    if post is None or not post.feature_image:
        return None
    uid = media.ADDRESS.search(post.feature_image)
    found = media.images_by_uid(db.session, [uid.group(1)]) if uid else {}
    image = next(iter(found.values()), None)
    return shown(image, current_store(), post.feature_image, at_most=480).src if image else None
