"""The Admin API: bearer tokens from `broadsheet token create`, limited by the owner's role.

Each handler parses, calls one service with the token's owner as the actor,
and commits once.  A post's ETag names its version; a write must carry it in
If-Match (428 without, 412 when someone saved since), so no update is lost.
"""

from __future__ import annotations

from typing import Any

from flask import Response, abort, g, json, request, url_for
from flask_smorest import Blueprint

from broadsheet.accounts.services import authenticate_token
from broadsheet.api import schemas
from broadsheet.api.errors import domain_problem
from broadsheet.content import services, staff_queries
from broadsheet.content import tags as tag_services
from broadsheet.content.models import Post, PostStatus
from broadsheet.content.queries import public_tag
from broadsheet.errors import Conflict, DomainError, NotFound
from broadsheet.extensions import csrf, db, utcnow
from broadsheet.newsletter import publishing, roster, sending
from broadsheet.newsletter.models import SubscriberStatus
from broadsheet.problems import PROBLEM_TYPE, problem

blp = Blueprint(
    "admin_api",
    __name__,
    url_prefix="/api/v1/admin",
    description="Staff writes and reads, with a bearer token; limited by the token owner's role.",
)
csrf.exempt(blp)  # bearer tokens, no cookies: nothing for a forged form to ride on
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string", "pattern": r'^"post-[0-9]+-v[0-9]+"$'},
    "description": "The post's ETag as last read (from GET or the last write); a stale one "
    "gets 412, none 428.",
}
STALE = "Someone saved the post since the ETag in If-Match."
NO_IF_MATCH = "If-Match was not sent."


blp.register_error_handler(DomainError, domain_problem)


@blp.before_request
def _authenticate() -> Response | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    user = None
    if scheme.lower() == "bearer" and secret.strip():
        user = authenticate_token(db.session, secret.strip(), now=utcnow())
    if user is None:
        return problem(
            401,
            detail="Send a live token made by `broadsheet token create`: Authorization: Bearer …",
            headers={"WWW-Authenticate": 'Bearer realm="broadsheet"'},
        )
    db.session.commit()  # the token's last use is recorded even when the request then fails
    g.api_actor = user
    return None


def _json_response(body: dict[str, Any]) -> Response:
    response = Response(json.dumps(body), mimetype="application/json")
    response.cache_control.no_store = True
    return response


def _etag(post: Post) -> str:
    return f'"post-{post.id}-v{post.version}"'


def _expected_version(post: Post) -> int:
    """The version the client edits, from If-Match; 428 when missing, 412 when stale."""
    if not request.if_match:
        abort(problem(428, detail="Send If-Match with the post's ETag from your last read."))
    if not request.if_match.contains(_etag(post).strip('"')):
        abort(
            problem(
                412,
                detail=f"The post changed since you read it: it is now at {_etag(post)}. "
                "Read it again and reapply your change.",
                headers={"ETag": _etag(post)},
            )
        )
    return post.version


def _post_response(post: Post, status: int = 200, **more: Any) -> Response:
    body = json.dumps({"post": schemas.AdminPostSchema().dump(post), **more})
    response = Response(body, status=status, mimetype="application/json")
    response.headers["ETag"] = _etag(post)
    response.cache_control.no_store = True
    if status == 201:
        response.headers["Location"] = url_for("admin_api.get_post", post_id=post.id)
    return response


def _load(post_id: int) -> Post:
    return staff_queries.staff_post(db.session, post_id, actor=g.api_actor)


def _commit_post(post_id: int, status: int = 200, **more: Any) -> Response:
    """Commit the door's one transaction, then answer with the post as it now stands."""
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    post = staff_queries.staff_post(db.session, post_id, actor=g.api_actor)
    return _post_response(post, status, **more)


@blp.get("/posts/")
@blp.arguments(schemas.AdminPostArgsSchema, location="query", as_kwargs=True)
@blp.response(200, schemas.AdminPostListSchema)
@blp.doc(security=SECURITY)
def list_posts(
    limit: int, page: int, status: str | None = None, tag: str | None = None,
    author: str | None = None, search: str = "",
) -> Response:  # fmt: skip
    """Posts of every status the token's owner may work on, last edited first."""
    found = staff_queries.staff_posts(
        db.session,
        actor=g.api_actor,
        number=page,
        per_page=limit,
        status=PostStatus(status) if status else None,
        tag_id=public_tag(db.session, tag).id if tag else None,
        author_id=staff_queries.staff_member(db.session, author).id if author else None,
        search=search,
        now=utcnow(),
    )
    body = {
        "posts": schemas.AdminPostSchema(many=True).dump(found.items),
        "pagination": {"limit": limit, "page": page, "pages": found.pages,
                       "total": found.total, "next_cursor": None},
    }  # fmt: skip
    return _json_response(body)


@blp.post("/posts/")
@blp.arguments(schemas.PostWriteSchema)
@blp.response(201, schemas.AdminPostOneSchema)
@blp.doc(security=SECURITY)
def create_post(fields: dict[str, Any]) -> Response:
    """Write a new draft; the token's owner is its author."""
    post = services.create_post(
        db.session, authors=[g.api_actor], actor=g.api_actor, now=utcnow(), **fields
    )
    return _commit_post(post.id, 201)


@blp.get("/posts/<int(max=2147483647):post_id>/")
@blp.response(200, schemas.AdminPostOneSchema)
@blp.doc(security=SECURITY)
def get_post(post_id: int) -> Response:
    """One post of any status, with its ETag for the next write."""
    return _post_response(_load(post_id))


@blp.patch("/posts/<int(max=2147483647):post_id>/")
@blp.arguments(schemas.PostPatchSchema)
@blp.response(200, schemas.AdminPostOneSchema)
@blp.alt_response(412, schema=schemas.ProblemSchema, content_type=PROBLEM_TYPE, description=STALE)
@blp.alt_response(
    428, schema=schemas.ProblemSchema, content_type=PROBLEM_TYPE, description=NO_IF_MATCH
)
@blp.doc(security=SECURITY, parameters=[IF_MATCH])
def update_post(changes: dict[str, Any], post_id: int) -> Response:
    """Change some fields of a post, against the version named in If-Match."""
    post = _load(post_id)
    version = _expected_version(post)
    current = {
        "title": post.title, "markdown": post.markdown, "tags": [t.name for t in post.tags],
        "slug": post.slug, "excerpt": post.custom_excerpt, "featured": post.featured,
        "meta_title": post.meta_title, "meta_description": post.meta_description,
    }  # fmt: skip
    try:
        services.update_post(
            db.session, post, actor=g.api_actor, expected_version=version, now=utcnow(),
            **{**current, **changes},
        )  # fmt: skip
    except Conflict as conflict:  # saved by someone else between our check and the write
        db.session.rollback()
        return problem(412, detail=conflict.message)
    return _commit_post(post_id)


@blp.delete("/posts/<int(max=2147483647):post_id>/")
@blp.response(204)
@blp.alt_response(412, schema=schemas.ProblemSchema, content_type=PROBLEM_TYPE, description=STALE)
@blp.alt_response(
    428, schema=schemas.ProblemSchema, content_type=PROBLEM_TYPE, description=NO_IF_MATCH
)
@blp.doc(security=SECURITY, parameters=[IF_MATCH])
def delete_post(post_id: int) -> Response:
    """Delete a post for good, against the version named in If-Match.

    Not the admin's trash: the caller has decided (and has no restore call), as
    with every other Admin API write.  A post in the trash is not found here.
    """
    post = _load(post_id)
    services.delete_post(
        db.session, post, actor=g.api_actor, expected_version=_expected_version(post)
    )
    db.session.commit()
    return Response(status=204)


@blp.post("/posts/<int(max=2147483647):post_id>/publish/")
@blp.arguments(schemas.PublishSchema)
@blp.response(200, schemas.PublishedPostSchema)
@blp.doc(security=SECURITY)
def publish_post(options: dict[str, Any], post_id: int) -> Response:
    """Publish now, with ``email`` also to its subscribers; publishing twice sends once.

    ``recipients`` says how many subscribers this call emails."""
    post = _load(post_id)
    recipients = publishing.publish_now(
        db.session, post, actor=g.api_actor, now=utcnow(), email=options["email"]
    )
    return _commit_post(post_id, recipients=recipients)


@blp.post("/posts/<int(max=2147483647):post_id>/schedule/")
@blp.arguments(schemas.ScheduleSchema)
@blp.response(200, schemas.PublishedPostSchema)
@blp.doc(security=SECURITY)
def schedule_post(options: dict[str, Any], post_id: int) -> Response:
    """Have the scheduler publish the post at ``publish_at`` (and, with ``email``, mail it).

    ``recipients`` says how many subscribers it would email as things stand now."""
    post = _load(post_id)
    recipients = publishing.schedule(
        db.session, post, actor=g.api_actor, at=options["publish_at"], now=utcnow(),
        email=options["email"],
    )  # fmt: skip
    return _commit_post(post_id, recipients=recipients)


@blp.post("/posts/<int(max=2147483647):post_id>/unpublish/")
@blp.response(200, schemas.AdminPostOneSchema)
@blp.doc(security=SECURITY)
def unpublish_post(post_id: int) -> Response:
    """Take the post back to a draft."""
    post = _load(post_id)
    services.unpublish_post(db.session, post, actor=g.api_actor, now=utcnow())
    return _commit_post(post_id)


def _tag_body(tag_id: int) -> dict[str, Any]:
    tag = tag_services.find_tag(db.session, tag_id, actor=g.api_actor)
    count = tag_services.post_count(db.session, tag)
    return {"tag": {**schemas.AdminTagSchema().dump(tag), "post_count": count}}


@blp.get("/tags/")
@blp.response(200, schemas.AdminTagListSchema)
@blp.doc(security=SECURITY)
def list_tags() -> Response:
    """Every tag, internal ones too, with how many posts of any status carry it."""
    rows = tag_services.tags_with_counts(db.session, actor=g.api_actor)
    tags = [{**schemas.AdminTagSchema().dump(tag), "post_count": count} for tag, count in rows]
    return _json_response({"tags": tags})


@blp.patch("/tags/<int(max=2147483647):tag_id>/")
@blp.arguments(schemas.TagPatchSchema)
@blp.response(200, schemas.AdminTagOneSchema)
@blp.doc(security=SECURITY)
def update_tag(changes: dict[str, Any], tag_id: int) -> Response:
    """Rename or describe a tag."""
    tag = tag_services.find_tag(db.session, tag_id, actor=g.api_actor)
    if "name" in changes:
        tag_services.rename_tag(db.session, tag, changes["name"], actor=g.api_actor)
    if "description" in changes:
        tag_services.describe_tag(db.session, tag, changes["description"], actor=g.api_actor)
    db.session.commit()
    return _json_response(_tag_body(tag_id))


@blp.post("/tags/<int(max=2147483647):tag_id>/merge/")
@blp.arguments(schemas.TagMergeSchema)
@blp.response(200, schemas.AdminTagOneSchema)
@blp.doc(security=SECURITY)
def merge_tag(options: dict[str, Any], tag_id: int) -> Response:
    """Fold this tag into another: its posts get the other tag, and this one goes."""
    source = tag_services.find_tag(db.session, tag_id, actor=g.api_actor)
    target = tag_services.find_tag(db.session, options["into"], actor=g.api_actor)
    merged = tag_services.merge_tags(db.session, source, target, actor=g.api_actor)
    db.session.commit()
    return _json_response(_tag_body(merged.id))


def _progress(post_id: int) -> dict[str, Any]:
    progress = sending.post_send_progress(db.session, post_id, actor=g.api_actor)
    return {"send": schemas.ProgressSchema().dump(progress)}


@blp.get("/posts/<int(max=2147483647):post_id>/send/")
@blp.response(200, schemas.ProgressOneSchema)
@blp.doc(security=SECURITY)
def send_progress(post_id: int) -> Response:
    """How far the post's newsletter has got: recipients, sent, failed, remaining."""
    return _json_response(_progress(post_id))


@blp.post("/posts/<int(max=2147483647):post_id>/send/cancel/")
@blp.response(200, schemas.ProgressOneSchema)
@blp.doc(security=SECURITY)
def cancel_send(post_id: int) -> Response:
    """Stop the post's newsletter: nobody not yet mailed will be."""
    send = sending.send_for_post(db.session, post_id)
    if send is None:
        raise NotFound("this post has not been emailed")
    sending.cancel_send(db.session, send.id, actor=g.api_actor, now=utcnow())
    db.session.commit()
    return _json_response(_progress(post_id))


@blp.get("/subscribers/")
@blp.arguments(schemas.SubscriberArgsSchema, location="query", as_kwargs=True)
@blp.response(200, schemas.SubscriberListSchema)
@blp.doc(security=SECURITY)
def list_subscribers(search: str, limit: int, page: int, status: str | None = None) -> Response:
    """Subscribers newest first, by address fragment and status, with their tags."""
    found = roster.list_subscribers(
        db.session, actor=g.api_actor, search=search, number=page, per_page=limit,
        status=SubscriberStatus(status) if status else None,
    )  # fmt: skip
    pagination = {
        "limit": limit, "page": page, "pages": found.pages, "total": found.total,
        "next_cursor": None,
    }  # fmt: skip
    subscribers = schemas.SubscriberSchema(many=True).dump(found.subscribers)
    return _json_response({"subscribers": subscribers, "pagination": pagination})
