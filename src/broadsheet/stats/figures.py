"""What staff read: the dashboard's figures and a post's, each decided by who asks.

Editors and above see the whole site; contributors and authors see their
own posts' figures only (views, top posts, referrers, tags of their posts),
and neither the site's visitors nor its subscribers.  Every figure is read
from the daily rows, so a dashboard is a handful of grouped queries over an
index on the day, whatever the traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from broadsheet.accounts.permissions import Action, Actor, can, require
from broadsheet.content.models import Post, PostAuthor
from broadsheet.content.services import load_post
from broadsheet.errors import Forbidden, Invalid
from broadsheet.extensions import DbSession
from broadsheet.newsletter.models import (
    Delivery,
    DeliveryStatus,
    EmailClick,
    EmailOpen,
    Send,
    Subscriber,
)
from broadsheet.stats.models import DayViews, SiteDay, Top
from broadsheet.stats.ranking import KINDS, PERIODS, TOP, Ranked, top_referrers

__all__ = ["PERIODS", "Dashboard", "PostFigures", "Ranked", "dashboard", "post_figures"]

# An unsubscribe within this long of receiving a post's email is put down to that email.
UNSUBSCRIBE_WINDOW = timedelta(days=7)
LINKS_SHOWN = 50  # an email's most clicked links, in its clicks-per-link table


@dataclass(frozen=True)
class Day:
    day: date
    views: int
    visitors: int


@dataclass(frozen=True)
class Growth:
    day: date
    confirmed: int
    unsubscribed: int

    @property
    def net(self) -> int:
        return self.confirmed - self.unsubscribed


@dataclass(frozen=True)
class Dashboard:
    days: int
    first: date
    last: date
    whole_site: bool  # False: the actor's own posts only
    daily: list[Day]
    top_posts: list[Ranked]
    top_tags: list[Ranked]
    top_referrers: list[Ranked]
    top_sources: list[Ranked]
    growth: list[Growth] | None  # subscribers: whole site only
    signups_from: list[Ranked] | None

    @property
    def views(self) -> int:
        return sum(day.views for day in self.daily)

    @property
    def visitors(self) -> int:
        return sum(day.visitors for day in self.daily)


@dataclass(frozen=True)
class LinkClicks:
    url: str
    readers: int  # deliveries that clicked it at least once
    clicks: int  # every click


@dataclass(frozen=True)
class EmailResults:
    recipients: int
    delivered: int
    failed: int
    unsubscribes: int
    opens: int | None = None  # unique opens; None: STATS_EMAIL_OPENS off
    links: list[LinkClicks] | None = None  # None: STATS_EMAIL_CLICKS off


@dataclass(frozen=True)
class PostFigures:
    post_id: int
    title: str
    days: int
    first: date
    last: date
    daily: list[Day]
    referrers: list[Ranked]
    email: EmailResults | None

    @property
    def views(self) -> int:
        return sum(day.views for day in self.daily)


def check_period(days: Any) -> int:
    """The period asked for, in days; Invalid unless it is one the dashboards offer."""
    try:
        number = int(days)
    except (TypeError, ValueError):
        number = 0
    if number not in PERIODS:
        raise Invalid({"days": "must be 7, 30 or 90"})
    return number


def _period(days: int, now: datetime) -> tuple[date, date]:
    last = now.astimezone(UTC).date()
    return last - timedelta(days=days - 1), last


def _own_posts(actor: Actor) -> ColumnElement[bool]:
    owned = select(PostAuthor.post_id).where(PostAuthor.user_id == actor.id)
    return DayViews.post_id.in_(owned)


def _daily(session: DbSession, where: list[Any], first: date, last: date) -> list[Day]:
    rows = session.execute(
        select(DayViews.day, func.sum(DayViews.views), func.sum(DayViews.visitors))
        .where(*where)
        .group_by(DayViews.day)
    )
    found = {_as_date(day): (int(views), int(visitors)) for day, views, visitors in rows}
    span = (last - first).days + 1
    return [
        Day(day, *found.get(day, (0, 0)))
        for day in (first + timedelta(days=n) for n in range(span))
    ]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _day_of(session: DbSession, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _growth(session: DbSession, first: date, last: date) -> list[Growth]:
    start = datetime.combine(first, time(), tzinfo=UTC)
    counts: dict[str, dict[date, int]] = {}
    for name, column in (
        ("confirmed", Subscriber.confirmed_at),
        ("unsubscribed", Subscriber.unsubscribed_at),
    ):
        day = _day_of(session, column)
        rows: Any = session.execute(select(day, func.count()).where(column >= start).group_by(day))
        counts[name] = {_as_date(d): int(n) for d, n in rows}
    span = (last - first).days + 1
    return [
        Growth(d, counts["confirmed"].get(d, 0), counts["unsubscribed"].get(d, 0))
        for d in (first + timedelta(days=n) for n in range(span))
    ]


def _signups_from(session: DbSession, first: date) -> list[Ranked]:
    """The pages readers who confirmed in the period subscribed from; a post's by its title."""
    start = datetime.combine(first, time(), tzinfo=UTC)
    count = func.count()
    rows = session.execute(
        select(Subscriber.signup_path, count)
        .where(Subscriber.confirmed_at >= start, Subscriber.signup_path.is_not(None))
        .group_by(Subscriber.signup_path)
        .order_by(count.desc(), Subscriber.signup_path)
        .limit(TOP)
    ).all()
    slugs = {str(path).strip("/"): path for path, _ in rows}
    posts: dict[str, tuple[int | None, str]] = {
        f"/{slug}/": (post_id, title)
        for post_id, slug, title in session.execute(
            select(Post.id, Post.slug, Post.title).where(Post.slug.in_(list(slugs)))
        )
    }
    ranked = []
    for path, n in rows:
        post_id, title = posts.get(str(path), (None, str(path)))
        ranked.append(Ranked(title, int(n), post_id))
    return ranked


def dashboard(session: DbSession, *, actor: Actor, days: int, now: datetime) -> Dashboard:
    """The dashboard over the last ``days`` days (today included) for ``actor``.

    Editors and above: the whole site, subscribers included.  Contributors and
    authors: their own posts' views only.  Raises Forbidden for anyone else.
    """
    require(actor, Action.VIEW_ADMIN)
    days = check_period(days)
    first, last = _period(days, now)
    whole_site = can(actor, Action.VIEW_SITE_STATS)
    if whole_site:
        daily = _site_daily(session, first, last)
        tops = _stored_tops(session, days)
    else:
        # A visitor counts on the day's first page: a figure for the whole site only.
        where = [DayViews.day >= first, DayViews.day <= last, _own_posts(actor)]
        daily = [Day(d.day, d.views, 0) for d in _daily(session, where, first, last)]
        tops = {kind: ranking(session, where) for kind, ranking in KINDS.items()}
    return Dashboard(
        days=days,
        first=first,
        last=last,
        whole_site=whole_site,
        daily=daily,
        top_posts=tops["posts"],
        top_tags=tops["tags"],
        top_referrers=tops["referrers"],
        top_sources=tops["sources"],
        growth=_growth(session, first, last) if whole_site else None,
        signups_from=_signups_from(session, first) if whole_site else None,
    )


def _site_daily(session: DbSession, first: date, last: date) -> list[Day]:
    """The whole site's days, from the roll-up's one row a day."""
    rows = session.execute(
        select(SiteDay.day, SiteDay.views, SiteDay.visitors).where(
            SiteDay.day >= first, SiteDay.day <= last
        )
    )
    found = {_as_date(day): (views, visitors) for day, views, visitors in rows}
    span = (last - first).days + 1
    return [
        Day(day, *found.get(day, (0, 0)))
        for day in (first + timedelta(days=n) for n in range(span))
    ]


def _stored_tops(session: DbSession, days: int) -> dict[str, list[Ranked]]:
    """The whole site's top lists for the period, as the last roll-up computed them."""
    tops: dict[str, list[Ranked]] = {kind: [] for kind in KINDS}
    for top in session.scalars(select(Top).where(Top.days == days).order_by(Top.kind, Top.rank)):
        tops[top.kind].append(Ranked(top.label, top.views, top.post_id))
    return tops


def _may_see(actor: Actor, post: Post) -> bool:
    if can(actor, Action.VIEW_SITE_STATS):
        return True
    return can(actor, Action.VIEW_ADMIN) and actor.id is not None and actor.id in post.author_ids


def _opens(session: DbSession, send_id: int) -> int:
    in_send = select(Delivery.id).where(Delivery.send_id == send_id)
    count = session.scalar(
        select(func.count()).select_from(EmailOpen).where(EmailOpen.delivery_id.in_(in_send))
    )
    return int(count or 0)


def _links(session: DbSession, send_id: int) -> list[LinkClicks]:
    readers, clicks = func.count(EmailClick.id), func.sum(EmailClick.clicks)
    rows = session.execute(
        select(EmailClick.url, readers, clicks)
        .join(Delivery, Delivery.id == EmailClick.delivery_id)
        .where(Delivery.send_id == send_id)
        .group_by(EmailClick.url)
        .order_by(readers.desc(), clicks.desc(), EmailClick.url)
        .limit(LINKS_SHOWN)
    )
    return [LinkClicks(str(url), int(n), int(total)) for url, n, total in rows]


def _email_results(
    session: DbSession, post_id: int, *, opens: bool, clicks: bool
) -> EmailResults | None:
    send = session.scalar(select(Send).where(Send.post_id == post_id))
    if send is None:
        return None
    counts = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.send_id == send.id)
            .group_by(Delivery.status)
        ).all()
    )
    # Few rows: only recipients who unsubscribed after their email went.
    left: Any = session.execute(
        select(Delivery.sent_at, Subscriber.unsubscribed_at)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(
            Delivery.send_id == send.id,
            Delivery.status == DeliveryStatus.SENT,
            Subscriber.unsubscribed_at >= Delivery.sent_at,
        )
    ).all()
    unsubscribes = sum(
        1 for sent, gone in left if sent is not None and gone < sent + UNSUBSCRIBE_WINDOW
    )
    return EmailResults(
        recipients=send.recipients,
        delivered=counts.get(DeliveryStatus.SENT, 0),
        failed=counts.get(DeliveryStatus.FAILED, 0),
        unsubscribes=unsubscribes,
        opens=_opens(session, send.id) if opens else None,
        links=_links(session, send.id) if clicks else None,
    )


def post_figures(
    session: DbSession,
    post_id: int,
    *,
    actor: Actor,
    days: int,
    now: datetime,
    email_opens: bool = False,
    email_clicks: bool = False,
) -> PostFigures:
    """One post's views per day, its referrers, and its email's results if it was emailed.

    ``email_opens`` and ``email_clicks`` (the STATS_EMAIL_* settings) add the
    send's unique opens and its clicks per link.

    Raises NotFound for no such post, Forbidden unless the actor may see the
    whole site's figures or wrote the post, Invalid for a period not offered.
    """
    post = load_post(session, post_id)
    if not _may_see(actor, post):
        raise Forbidden("Only the post's authors and editors can see its figures.")
    days = check_period(days)
    first, last = _period(days, now)
    where: list[Any] = [DayViews.day >= first, DayViews.day <= last, DayViews.post_id == post.id]
    daily = [Day(day.day, day.views, 0) for day in _daily(session, where, first, last)]
    return PostFigures(
        post_id=post.id,
        title=post.title,
        days=days,
        first=first,
        last=last,
        daily=daily,
        referrers=top_referrers(session, where),
        email=_email_results(session, post.id, opens=email_opens, clicks=email_clicks),
    )
