"""Public pages."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from broadsheet.content.models import Post, PostKind, PostStatus, with_links
from broadsheet.extensions import db, utcnow

bp = Blueprint("site", __name__, template_folder="templates")
PER_PAGE = 10


@bp.get("/")
def home() -> str:
    now = utcnow()
    posts = db.session.scalars(
        select(Post)
        .where(
            Post.kind == PostKind.POST,
            Post.status == PostStatus.PUBLISHED,
            Post.published_at <= now,
        )
        .order_by(Post.published_at.desc(), Post.id.desc())
        .limit(PER_PAGE)
        .options(*with_links())
    ).all()
    return render_template("site/home.html", posts=posts)


@bp.get("/<slug>/")
def post(slug: str) -> str:
    found = db.session.scalar(select(Post).where(Post.slug == slug).options(*with_links()))
    if found is None or not found.is_visible(utcnow()):
        abort(404)
    return render_template("site/post.html", post=found)
