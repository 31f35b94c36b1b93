"""The admin's forms: they parse and type the input; the services judge it."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
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
from wtforms.validators import DataRequired, EqualTo, InputRequired, Optional

from broadsheet.accounts.models import Role


class ButtonForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons that POST (sign out, restore)."""


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class ResetRequestForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])


class ResetForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired()])
    confirm = PasswordField(
        "Repeat it", validators=[EqualTo("password", message="The two passwords differ.")]
    )


class PostForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired()])
    slug = StringField("Slug", description="Leave empty to derive it from the title.")
    markdown = TextAreaField("Body (Markdown)")
    tags = StringField("Tags", description="Separated by commas; new tags are created on save.")
    excerpt = TextAreaField("Excerpt", description="Leave empty to use the first paragraph.")
    featured = BooleanField("Featured")
    meta_title = StringField("SEO title")
    meta_description = TextAreaField("SEO description")
    # Browsers send minutes, or seconds when the field has step=1.
    publish_at = DateTimeLocalField(
        "Publish at", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=[Optional()]
    )
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
        }


class TagForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired()])
    description = TextAreaField("Description")


class MergeForm(FlaskForm):
    target = SelectField("Merge into", coerce=int)


ROLE_CHOICES = [
    SelectChoice(role.value, role.value.capitalize()) for role in Role if role is not Role.OWNER
]


class StaffForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    name = StringField("Name")
    role = SelectField("Role", choices=ROLE_CHOICES, default=Role.AUTHOR.value)
    password = PasswordField("Password", description="They can also set one by password reset.")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class SettingsForm(FlaskForm):
    title = StringField("Site title", validators=[DataRequired()])
    description = TextAreaField("Description")
    timezone = StringField("Time zone", description="An IANA name, such as Europe/Paris.")
    posts_per_page = IntegerField("Posts per page", validators=[InputRequired()])
