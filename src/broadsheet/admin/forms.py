"""The admin's forms: they parse and type the input; the services judge it."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields import SelectChoice
from wtforms.meta import DefaultMeta
from wtforms.validators import DataRequired, EqualTo, InputRequired, Optional

from broadsheet.accounts.models import Role


class Form(FlaskForm):
    """Every admin form: its hidden fields carry no ``id``.

    Several forms share a page (a role, deactivate and hand-over form on a
    staff member's page, a restore button on each revision), and each would
    otherwise repeat ``id="csrf_token"``, which HTML forbids.  Nothing
    points at a hidden field by its id.
    """

    class Meta:
        def render_field(self, field: Any, render_kw: dict[str, Any]) -> Any:
            if field.type in {"CSRFTokenField", "HiddenField"}:
                render_kw = {"id": False, **render_kw}
            return DefaultMeta.render_field(self, field, render_kw)


class ButtonForm(Form):
    """A form with nothing but its CSRF token, for buttons that POST (sign out, restore)."""


class LoginForm(Form):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class ResetRequestForm(Form):
    email = EmailField("Email", validators=[DataRequired()])


class ResetForm(Form):
    password = PasswordField("New password", validators=[DataRequired()])
    confirm = PasswordField(
        "Repeat it", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class PostForm(Form):
    title = StringField("Title", validators=[DataRequired()])
    slug = StringField("Slug", description="Leave empty to derive it from the title.")
    markdown = TextAreaField("Body (Markdown)")
    tags = StringField("Tags", description="Separated by commas; new tags are created on save.")
    excerpt = TextAreaField("Excerpt", description="Leave empty to use the first paragraph.")
    featured = BooleanField("Featured")
    meta_title = StringField("SEO title")
    meta_description = TextAreaField("SEO description")
    # The editor's picker has step=60 (minutes, no seconds); seconds are still accepted.
    publish_at = DateTimeLocalField(
        "Publish at", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[Optional()]
    )
    # Kept on the post by every save, so that a scheduled post goes out as the writer chose.
    email_on_publish = BooleanField("Email subscribers when it is published", default=True)
    version = HiddenField()

    def tag_names(self) -> list[str]:
        return [name for name in (self.tags.data or "").split(",") if name.strip()]

    def post_fields(self) -> dict[str, Any]:
        """The post's own fields as the content services take them (empty means none)."""
        return {
            "title": self.title.data or "",
            "markdown": self.markdown.data or "",
            "tags": self.tag_names(),
            "slug": self.slug.data or None,
            "excerpt": self.excerpt.data or None,
            "featured": self.featured.data,
            "meta_title": self.meta_title.data or None,
            "meta_description": self.meta_description.data or None,
            "email_on_publish": bool(self.email_on_publish.data),
        }


class ImageUploadForm(Form):
    file = FileField("Image", validators=[FileRequired("Choose an image to upload.")])
    alt = StringField(
        "Alt text", description="What the picture shows, for people who cannot see it."
    )


class ReplaceForm(Form):
    file = FileField("New image", validators=[FileRequired("Choose an image to upload.")])


class AltForm(Form):
    alt = TextAreaField("Alt text")


class TagForm(Form):
    name = StringField("Name", validators=[DataRequired()])
    description = TextAreaField("Description")


class MergeForm(Form):
    target = SelectField("Merge into", coerce=int)


ROLE_CHOICES = [
    SelectChoice(role.value, role.value.capitalize()) for role in Role if role is not Role.OWNER
]


class StaffForm(Form):
    email = EmailField("Email", validators=[DataRequired()])
    name = StringField(
        "Display name",
        description="Shown in bylines. Left empty: the part of the email before the @.",
    )
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.AUTHOR.value)
    password = PasswordField("Password", description="They can also set one by password reset.")


class RoleForm(Form):
    role = SelectField("Role", choices=ROLE_CHOICES)


class SettingsForm(Form):
    title = StringField("Site title", validators=[DataRequired()])
    description = TextAreaField("Description")
    timezone = StringField("Time zone", description="An IANA name, such as Europe/Paris.")
    posts_per_page = IntegerField("Posts per page", validators=[InputRequired()])
