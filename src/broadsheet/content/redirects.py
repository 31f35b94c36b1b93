"""Old addresses that answer with a 301 to where their content lives now.

A redirect is consulted only where the site would otherwise say "not
found", so a live page always wins over a redirect from the same path.  A
redirect either names a post (it then follows the post through later slug
changes: no chains to flatten) or a fixed target path or URL.  Rows come
from three places: staff in the admin, the content services when a public
post's slug changes, and imports (old WordPress and Ghost links).
"""

from __future__ import annotations

import enum
import re
from datetime import datetime
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from sqlalchemy import Enum, ForeignKey, String, delete, func, select
from sqlalchemy.orm import Mapped, lazyload, mapped_column, relationship

from broadsheet.accounts.permissions import Action, Actor, require
from broadsheet.bulk import bulk_insert
from broadsheet.content.models import Post
from broadsheet.errors import Conflict, Invalid, NotFound
from broadsheet.extensions import DbSession, Model, utcnow

MAX_PATH = 500
# Query parameters of old WordPress links (``/?p=123``) that a redirect may match on.
LEGACY_QUERY_KEYS = frozenset({"p", "page_id", "cat", "tag"})
_unsafe = re.compile(r"[\s\x00-\x1f\x7f\\]")


class RedirectSource(enum.StrEnum):
    STAFF = "staff"
    SLUG_CHANGE = "slug-change"
    IMPORT = "import"


class Redirect(Model):
    __tablename__ = "redirects"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Normalised by ``normalise_path``: the lookup is one probe of this unique index.
    old_path: Mapped[str] = mapped_column(String(MAX_PATH), unique=True)
    # Either a post (followed through slug changes) or a fixed target.
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str | None] = mapped_column(String(MAX_PATH))
    source: Mapped[RedirectSource] = mapped_column(
        Enum(
            RedirectSource,
            native_enum=False,
            length=20,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=RedirectSource.STAFF,
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    post: Mapped[Post | None] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"<Redirect {self.old_path} → {self.post_id or self.target}>"


def normalise_path(raw: str) -> str:
    """The form an old address is stored and looked up in: decoded, without a trailing slash,
    and with only the legacy query parameters, in order (``/?p=12``, ``/2019/05/a-post``)."""
    parts = urlsplit(raw.strip())
    path = unquote(parts.path or "/")
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    pairs = sorted((k, v) for k, v in parse_qsl(parts.query) if k in LEGACY_QUERY_KEYS)
    return f"{path}?{urlencode(pairs)}" if pairs else path


def post_path(slug: str) -> str:
    """A post's own address on this site (``site.post``'s rule), normalised."""
    return f"/{slug}"


def _check_old(raw: str) -> str | None:
    if not raw.startswith("/") or raw.startswith("//"):
        return "must be a path on this site, starting with /"
    if len(raw) > MAX_PATH:
        return f"must be at most {MAX_PATH} characters"
    if _unsafe.search(raw):
        return "may not hold spaces, backslashes or control characters"
    if normalise_path(raw) == "/":
        return "the home page cannot be redirected"
    return None


def _check_target(raw: str) -> str | None:
    if not raw:
        return "is required"
    if len(raw) > MAX_PATH:
        return f"must be at most {MAX_PATH} characters"
    if _unsafe.search(raw):
        return "may not hold spaces, backslashes or control characters"
    parts = urlsplit(raw)
    if raw.startswith("/") and not raw.startswith("//"):
        return None
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return "must be a path on this site (/…) or an http(s) address"


def find_redirect(session: DbSession, path: str) -> Redirect | None:
    """The redirect for an address readers asked for (with its post loaded), or None."""
    key = normalise_path(path)
    if len(key) > MAX_PATH:
        return None
    found = session.scalar(select(Redirect).where(Redirect.old_path == key))
    if found is not None and found.post is not None and found.post.deleted_at is not None:
        return None  # in the trash: the old address is as gone as the new one
    return found


def list_redirects(session: DbSession, *, actor: Actor, limit: int = 500) -> list[Redirect]:
    """Redirects newest first (each with its post), for staff who manage the site."""
    require(actor, Action.MANAGE_SETTINGS)
    return list(
        session.scalars(
            select(Redirect).order_by(Redirect.created_at.desc(), Redirect.id.desc()).limit(limit)
        )
    )


def count_redirects(session: DbSession) -> int:
    return session.scalar(select(func.count()).select_from(Redirect)) or 0


def add_redirect(
    session: DbSession, *, actor: Actor, old_path: str, target: str, now: datetime
) -> Redirect:
    """Add a staff redirect from ``old_path`` (a path here) to ``target`` (a path or an
    http(s) URL); flushes.  Raises Forbidden, Invalid naming each bad field, or Conflict
    when the old path already redirects."""
    require(actor, Action.MANAGE_SETTINGS)
    old_path, target = old_path.strip(), target.strip()
    errors: dict[str, str] = {}
    if problem := _check_old(old_path):
        errors["old_path"] = problem
    if problem := _check_target(target):
        errors["target"] = problem
    elif (
        not errors and target.startswith("/") and normalise_path(target) == normalise_path(old_path)
    ):
        errors["target"] = "must differ from the old path"
    if errors:
        raise Invalid(errors)
    key = normalise_path(old_path)
    if session.scalar(select(Redirect.id).where(Redirect.old_path == key)) is not None:
        raise Conflict(f"{key} already redirects; delete that redirect first")
    row = Redirect(old_path=key, target=target, source=RedirectSource.STAFF, created_at=now)
    session.add(row)
    session.flush()
    return row


def delete_redirect(session: DbSession, redirect_id: int, *, actor: Actor) -> None:
    """Remove a redirect; flushes.  Raises Forbidden or NotFound."""
    require(actor, Action.MANAGE_SETTINGS)
    row = session.get(Redirect, redirect_id)
    if row is None:
        raise NotFound(f"there is no redirect {redirect_id}")
    session.delete(row)
    session.flush()


def point_at_post(
    session: DbSession, old_path: str, post_id: int, *, source: RedirectSource, now: datetime
) -> None:
    """Make ``old_path`` lead to the post (replacing any redirect from it), unless it is the
    post's own address; flushes.  Rules' own helper: the callers check permissions."""
    key = normalise_path(old_path)
    if key == "/" or len(key) > MAX_PATH:
        return
    row = session.scalar(select(Redirect).where(Redirect.old_path == key))
    if row is None:
        session.add(Redirect(old_path=key, post_id=post_id, source=source, created_at=now))
    else:
        row.post_id, row.target, row.source = post_id, None, source
    session.flush()


def point_many_at_posts(
    session: DbSession,
    pairs: list[tuple[str, int]],
    *,
    source: RedirectSource,
    now: datetime,
) -> int:
    """``point_at_post`` for many (old path, post id) pairs in a few statements (imports: the
    new rows go in as one, without the ORM); returns how many redirects now lead to them."""
    wanted: dict[str, int] = {}
    for old_path, post_id in pairs:
        key = normalise_path(old_path)
        if key != "/" and len(key) <= MAX_PATH:
            wanted[key] = post_id
    if not wanted:
        return 0
    # Without the post each one leads to (joined by default): that join read every post.
    found = select(Redirect).where(Redirect.old_path.in_(wanted)).options(lazyload(Redirect.post))
    existing = {r.old_path: r for r in session.scalars(found)}
    added = []
    for key, post_id in wanted.items():
        row = existing.get(key)
        if row is None:
            added.append({"old_path": key, "post_id": post_id, "target": None,
                          "source": source, "created_at": now})  # fmt: skip
        else:
            row.post_id, row.target, row.source = post_id, None, source
    session.flush()
    bulk_insert(session, Redirect.__table__, added)  # type: ignore[arg-type]
    return len(wanted)


def point_at_path(
    session: DbSession, old_path: str, target: str, *, source: RedirectSource, now: datetime
) -> bool:
    """Add a redirect to a fixed path unless ``old_path`` already has one; flushes.  True when
    added.  For imports (tag archives); the caller checks permissions."""
    key = normalise_path(old_path)
    if key == "/" or key == normalise_path(target) or len(key) > MAX_PATH:
        return False
    if session.scalar(select(Redirect.id).where(Redirect.old_path == key)) is not None:
        return False
    session.add(Redirect(old_path=key, target=target, source=source, created_at=now))
    session.flush()
    return True


def slug_changed(session: DbSession, post: Post, old_slug: str, *, now: datetime) -> None:
    """After a public post's slug changed: its old address leads to it, and a redirect from its
    new address (left by an earlier rename) is dropped, as the post lives there now."""
    session.execute(delete(Redirect).where(Redirect.old_path == post_path(post.slug)))
    point_at_post(session, post_path(old_slug), post.id, source=RedirectSource.SLUG_CHANGE, now=now)
