"""What the API reads and writes, as marshmallow schemas (and so as OpenAPI)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from broadsheet.content.search import BODY_CANDIDATES, HEAD_CANDIDATES, MAX_QUERY_CHARACTERS
from broadsheet.content.tags import MAX_DESCRIPTION, MAX_TAG_NAME
from broadsheet.urls import absolute_url

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
# What the services accept, documented (the services check it and say what is wrong): a post's slug
# is a slug that is not all digits (those are the date archives' addresses); a title and
# a tag name hold something besides spaces; a tag name has a letter or digit to make its
# address from.
POST_SLUG_PATTERN = r"^[0-9]*[a-z][a-z0-9]*(?:-[a-z0-9]+)*$|^[a-z0-9]+(?:-[a-z0-9]+)+$"
POST_SLUG_DOC = {
    "pattern": POST_SLUG_PATTERN,
    "description": "Lower-case letters, digits and single hyphens, not only digits, and "
    "not a word the site uses itself (admin, api, feed, tag, …).",
}
TEXT_PATTERN = r"\S"
TAG_NAME_PATTERN = r"[A-Za-z0-9]"


URL_DOC = {"type": "string", "format": "uri"}
# A tag reference or null, and nothing else (OpenAPI 3.0 has no "null" type: nullable enum).
NULL_OR_TAG_REF = {
    "anyOf": [{"$ref": "#/components/schemas/TagRef"}, {"enum": [None], "nullable": True}]
}


class ProblemFieldSchema(Schema):
    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    errors = fields.List(fields.Nested(ProblemFieldSchema))


class TagRefSchema(Schema):
    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)
    url = fields.Function(
        lambda tag: absolute_url("site.tag", slug=tag.slug), required=True, metadata=URL_DOC
    )


class TagSchema(TagRefSchema):
    description = fields.String(required=True)
    post_count = fields.Integer(required=True)


class AuthorRefSchema(Schema):
    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    # The name readers see (User.display_name): never empty, never just a role.
    name = fields.String(required=True, attribute="display_name")
    url = fields.Function(
        lambda user: absolute_url("site.author", slug=user.slug), required=True, metadata=URL_DOC
    )


class AuthorSchema(AuthorRefSchema):
    bio = fields.String(required=True)
    post_count = fields.Integer(required=True)


class ImageVariantSchema(Schema):
    url = fields.String(required=True, metadata=URL_DOC)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    format = fields.String(required=True, metadata={"enum": ["jpeg", "png", "gif", "webp", "avif"]})


class FeatureImageSchema(Schema):
    url = fields.String(
        required=True,
        metadata={**URL_DOC, "description": "The image's stable address (it redirects to "
                  "the widest variant); what posts' Markdown holds."},
    )  # fmt: skip
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    alt = fields.String(required=True)
    state = fields.String(
        required=True,
        metadata={"enum": ["pending", "ready", "failed"],
                  "description": "pending: the variants are being made (none listed yet)"},
    )  # fmt: skip
    variants = fields.List(
        fields.Nested(ImageVariantSchema),
        required=True,
        metadata={"description": "Every width (480, 960, 1200, 1600, 2400, never wider than "
                  "the original) in WebP and in the original's format."},
    )  # fmt: skip


class ImageSchema(FeatureImageSchema):
    id = fields.Integer(required=True)
    markdown = fields.String(required=True, metadata={"description": "![alt](url), to paste"})


class ImageOneSchema(Schema):
    image = fields.Nested(ImageSchema, required=True)


class ImageUploadSchema(Schema):
    """The multipart body: the file, and its alt text (a plain form part, read beside it)."""

    file = Upload(
        required=True,
        metadata={"description": "JPEG, PNG, GIF or WebP (AVIF where supported), judged by "
                  "its content; at most MEDIA_MAX_BYTES (20 MB by default)."},
    )  # fmt: skip
    alt = fields.String(
        load_default="",
        validate=validate.Length(max=2000),
        metadata={"description": "What the picture shows, for people who cannot see it."},
    )


class PostSchema(Schema):
    id = fields.Integer(required=True)
    slug = fields.String(required=True)
    title = fields.String(required=True)
    url = fields.Function(
        lambda post: absolute_url("site.post", slug=post.slug), required=True, metadata=URL_DOC
    )
    html = fields.String(required=True)
    excerpt = fields.String(required=True)
    featured = fields.Boolean(required=True)
    feature_image = fields.String(allow_none=True, required=True)
    # Filled in by the Content API when the feature image is an upload of ours.
    feature_image_details = fields.Nested(
        FeatureImageSchema,
        allow_none=True,
        dump_only=True,
        metadata={"description": "The feature image's size, alt text and variants, when it "
                  "is an uploaded image (Content API only)."},
    )  # fmt: skip
    meta_title = fields.String(allow_none=True, required=True)
    meta_description = fields.String(allow_none=True, required=True)
    published_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    reading_time = fields.Integer(attribute="reading_minutes", required=True, dump_only=True)
    primary_tag = fields.Function(
        lambda post: TagRefSchema().dump(post.primary_tag) if post.primary_tag else None,
        allow_none=True,
        required=True,
        metadata=NULL_OR_TAG_REF,
    )
    # Readers see public tags only; staff see every tag (AdminPostSchema).
    tags = fields.List(
        fields.Nested(TagRefSchema), attribute="public_tags", required=True, dump_only=True
    )
    primary_author = fields.Nested(AuthorRefSchema, required=True, dump_only=True)
    authors = fields.List(fields.Nested(AuthorRefSchema), required=True, dump_only=True)


class PaginationSchema(Schema):
    limit = fields.Integer(required=True)
    page = fields.Integer(allow_none=True, required=True)
    pages = fields.Integer(allow_none=True, required=True)
    total = fields.Integer(allow_none=True, required=True)
    next_cursor = fields.String(allow_none=True, required=True)


class PostListSchema(Schema):
    posts = fields.List(fields.Nested(PostSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class PostOneSchema(Schema):
    post = fields.Nested(PostSchema, required=True)


class TagListSchema(Schema):
    tags = fields.List(fields.Nested(TagSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class TagOneSchema(Schema):
    tag = fields.Nested(TagSchema, required=True)


class AuthorListSchema(Schema):
    authors = fields.List(fields.Nested(AuthorSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class AuthorOneSchema(Schema):
    author = fields.Nested(AuthorSchema, required=True)


class PageArgsSchema(Schema):
    limit = fields.Integer(load_default=15, validate=validate.Range(1, 100))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))


class PostArgsSchema(Schema):
    """Filters and paging for the post list; ``page`` and ``cursor`` exclude each other."""

    tag = fields.List(
        fields.String(validate=validate.Regexp(SLUG_PATTERN)),
        load_default=list,
        metadata={"description": "A tag slug; repeat for several (see tag_mode)."},
    )
    tag_mode = fields.String(load_default="any", validate=validate.OneOf(["any", "all"]))
    author = fields.String(validate=validate.Regexp(SLUG_PATTERN))
    featured = fields.Boolean()
    published_before = fields.AwareDateTime(default_timezone=UTC)
    published_after = fields.AwareDateTime(default_timezone=UTC)
    order = fields.String(load_default="newest", validate=validate.OneOf(["newest", "oldest"]))
    limit = fields.Integer(load_default=15, validate=validate.Range(1, 100))
    page = fields.Integer(validate=validate.Range(1, 1_000_000))
    cursor = fields.String(validate=validate.Length(1, 500))
    q = fields.String(
        validate=validate.Length(1, MAX_QUERY_CHARACTERS),
        metadata={
            "description": 'Search every word of the posts: words, "quoted phrases", `OR`, '
            "`-word` to leave a word out; the last word also matches as a prefix.  Results come "
            "best match first (`order` is not used) and are paged by `page`, not `cursor`; "
            f"Only the newest {HEAD_CANDIDATES} title and tag matches and the newest "
            f"{BODY_CANDIDATES} matches anywhere are ranked and counted; a title or tag match "
            "comes first."
        },
    )

    @validates_schema
    def _page_or_cursor(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "page" in data and "cursor" in data:
            raise ValidationError("give page or cursor, not both", field_name="cursor")
        if "q" in data and "cursor" in data:
            raise ValidationError("a search is paged by page, not cursor", field_name="cursor")


# The Admin API ---------------------------------------------------------------------------


class AdminPostSchema(PostSchema):
    """A post as staff see it: every status, the Markdown, the version it is at."""

    status = fields.String(required=True)
    kind = fields.String(required=True)
    version = fields.Integer(required=True)
    markdown = fields.String(required=True)
    custom_excerpt = fields.String(allow_none=True, required=True)
    published_at = fields.AwareDateTime(allow_none=True, required=True)
    created_at = fields.AwareDateTime(required=True)
    tags = fields.List(fields.Nested(TagRefSchema), required=True, dump_only=True)


class AdminPostOneSchema(Schema):
    post = fields.Nested(AdminPostSchema, required=True)


class PublishedPostSchema(AdminPostOneSchema):
    """A post just published or scheduled, and how many subscribers its email reaches."""

    recipients = fields.Integer(
        allow_none=True,
        required=True,
        metadata={
            "description": "With `email`: how many subscribers this call emails (publish; 0 when "
            "the post was emailed before), or would email as things stand now (schedule: "
            "confirmed subscribers who follow every post or one of its tags). Null without "
            "`email`."
        },
    )


class AdminPostListSchema(Schema):
    posts = fields.List(fields.Nested(AdminPostSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class AdminPostArgsSchema(Schema):
    status = fields.String(validate=validate.OneOf(["draft", "scheduled", "published"]))
    tag = fields.String(validate=validate.Regexp(SLUG_PATTERN))
    author = fields.String(validate=validate.Regexp(SLUG_PATTERN))
    search = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=15, validate=validate.Range(1, 100))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))


_TEXT_LIMIT = 200_000


class PostWriteSchema(Schema):
    """A new post: a draft, written by the token's owner.  Unknown fields are an error."""

    title = fields.String(
        required=True,
        validate=validate.Length(1, 300),
        metadata={"pattern": TEXT_PATTERN, "description": "Must hold more than spaces."},
    )
    markdown = fields.String(load_default="", validate=validate.Length(max=_TEXT_LIMIT))
    tags = fields.List(
        fields.String(
            validate=validate.Length(1, MAX_TAG_NAME),
            metadata={"pattern": TAG_NAME_PATTERN, "description": "A name with a letter or digit."},
        ),
        load_default=list,
        validate=validate.Length(max=50),
    )
    slug = fields.String(
        validate=validate.Length(1, 200),
        metadata=POST_SLUG_DOC,
    )
    excerpt = fields.String(allow_none=True, validate=validate.Length(max=2000))
    featured = fields.Boolean(load_default=False)
    meta_title = fields.String(allow_none=True, validate=validate.Length(max=300))
    meta_description = fields.String(allow_none=True, validate=validate.Length(max=500))


class PostPatchSchema(Schema):
    """Changes to a post; fields left out keep their value."""

    title = fields.String(
        validate=validate.Length(1, 300),
        metadata={"pattern": TEXT_PATTERN, "description": "Must hold more than spaces."},
    )
    markdown = fields.String(validate=validate.Length(max=_TEXT_LIMIT))
    tags = fields.List(
        fields.String(
            validate=validate.Length(1, MAX_TAG_NAME),
            metadata={"pattern": TAG_NAME_PATTERN, "description": "A name with a letter or digit."},
        ),
        validate=validate.Length(max=50),
    )
    slug = fields.String(
        validate=validate.Length(1, 200),
        metadata=POST_SLUG_DOC,
    )
    excerpt = fields.String(allow_none=True, validate=validate.Length(max=2000))
    featured = fields.Boolean()
    meta_title = fields.String(allow_none=True, validate=validate.Length(max=300))
    meta_description = fields.String(allow_none=True, validate=validate.Length(max=500))


class PublishSchema(Schema):
    email = fields.Boolean(
        load_default=False,
        metadata={"description": "Also email the post to its subscribers (once)."},
    )


class ScheduleSchema(Schema):
    publish_at = fields.AwareDateTime(
        required=True,
        metadata={
            "description": "In the future; a post that is already public must be unpublished "
            "first (422 otherwise)."
        },
    )
    email = fields.Boolean(load_default=False)


class AdminTagSchema(TagRefSchema):
    description = fields.String(required=True)
    internal = fields.Boolean(required=True, attribute="is_internal")
    post_count = fields.Integer(required=True)


class AdminTagListSchema(Schema):
    tags = fields.List(fields.Nested(AdminTagSchema), required=True)


class AdminTagOneSchema(Schema):
    tag = fields.Nested(AdminTagSchema, required=True)


class TagPatchSchema(Schema):
    name = fields.String(validate=validate.Length(1, MAX_TAG_NAME))
    description = fields.String(validate=validate.Length(max=MAX_DESCRIPTION))


class TagMergeSchema(Schema):
    into = fields.Integer(required=True, validate=validate.Range(1, 2_147_483_647))


class SubscriberSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    status = fields.String(required=True)
    tags = fields.Function(
        lambda subscriber: [tag.slug for tag in subscriber.tags],
        required=True,
        metadata={"type": "array", "items": {"type": "string"}},
    )
    created_at = fields.AwareDateTime(required=True)
    confirmed_at = fields.AwareDateTime(allow_none=True, required=True)
    unsubscribed_at = fields.AwareDateTime(allow_none=True, required=True)


class SubscriberListSchema(Schema):
    subscribers = fields.List(fields.Nested(SubscriberSchema), required=True)
    pagination = fields.Nested(PaginationSchema, required=True)


class SubscriberArgsSchema(Schema):
    search = fields.String(validate=validate.Length(max=254), load_default="")
    status = fields.String(validate=validate.OneOf(["pending", "confirmed", "unsubscribed"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 100))
    page = fields.Integer(load_default=1, validate=validate.Range(1, 1_000_000))


class ProgressSchema(Schema):
    """How far a post's newsletter send has got."""

    send_id = fields.Integer(required=True)
    post_id = fields.Integer(required=True)
    status = fields.Function(lambda p: p.status.value, required=True, metadata={"type": "string"})
    recipients = fields.Integer(required=True)
    sent = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    skipped = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    percent = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True, required=True)
    stop_reason = fields.String(allow_none=True, required=True)


class ProgressOneSchema(Schema):
    send = fields.Nested(ProgressSchema, required=True)


class SubscribeSchema(Schema):
    """A reader's request for the newsletter; a confirmation email follows (double opt-in)."""

    email = fields.String(required=True, validate=validate.Length(1, 254))
    tags = fields.List(
        fields.String(validate=validate.Regexp(SLUG_PATTERN)),
        load_default=list,
        validate=validate.Length(max=50),
        metadata={"description": "Tag slugs; only posts with one of them are sent. None: all."},
    )


class AcceptedSchema(Schema):
    message = fields.String(required=True)
