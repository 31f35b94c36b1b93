"""Newsletter opens and clicks, for sites that ask for them (both off by default).

With ``STATS_EMAIL_OPENS`` each email carries a 1x1 image whose address
names its delivery; the first load counts as the delivery's open.  Mail
clients that fetch every image ahead of the reader (Apple Mail's privacy
protection, some scanners) load it too, so opens are an upper bound.

With ``STATS_EMAIL_CLICKS`` each link of the post's text points at the
site's redirect with a token signed with the secret key (its own salt),
covering the delivery and the target: changing either breaks the
signature, so the redirect can only send a reader where the email did.

Nothing about the reader is stored: the delivery, the link, and when.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.dialects import postgresql, sqlite

from broadsheet.errors import NotFound
from broadsheet.extensions import DbSession
from broadsheet.newsletter.models import Delivery, EmailClick, EmailOpen

OPEN_SALT = "broadsheet.newsletter.open"
CLICK_SALT = "broadsheet.newsletter.click"
# A 1x1 transparent GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_TRACKED_SCHEMES = frozenset({"http", "https"})


def open_token(secret_key: str, delivery_id: int) -> str:
    return URLSafeSerializer(secret_key, salt=OPEN_SALT).dumps(delivery_id)


def click_token(secret_key: str, delivery_id: int, url: str) -> str:
    return URLSafeSerializer(secret_key, salt=CLICK_SALT).dumps([delivery_id, url])


def read_open(secret_key: str, token: str) -> int | None:
    """The delivery a pixel token names, or None when it is forged."""
    try:
        payload = URLSafeSerializer(secret_key, salt=OPEN_SALT).loads(token)
    except BadSignature:
        return None
    return payload if isinstance(payload, int) and not isinstance(payload, bool) else None


def read_click(secret_key: str, token: str) -> tuple[int, str] | None:
    """The (delivery, target) a click token names, or None when it is forged or odd."""
    try:
        payload = URLSafeSerializer(secret_key, salt=CLICK_SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(payload, list) or len(payload) != 2:
        return None
    delivery_id, url = payload
    if not isinstance(delivery_id, int) or isinstance(delivery_id, bool):
        return None
    if not isinstance(url, str) or urlsplit(url).scheme not in _TRACKED_SCHEMES:
        return None
    return delivery_id, url


def tracked_links(html: str, *, base: str, redirect: Callable[[str], str]) -> str:
    """``html`` (a fragment) with each web link's address replaced by ``redirect(address)``.

    Links are made absolute against ``base`` first; ``mailto:`` links and
    anchors within the email are left as they are.
    """
    if not html.strip():
        return html
    wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    for link in wrapper.iter("a"):
        href = (link.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        target = urljoin(base, href)
        if urlsplit(target).scheme in _TRACKED_SCHEMES:
            link.set("href", redirect(target))
    inner = wrapper.text or ""
    return inner + "".join(lxml.html.tostring(child, encoding="unicode") for child in wrapper)


def _insert(session: DbSession, model: type[Any]) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(model)


def record_open(
    session: DbSession, *, secret_key: str, token: str, record: bool, now: datetime
) -> None:
    """Count the first open of the delivery a pixel token names; later ones change nothing.

    ``record`` false (the setting off): nothing is written.  Raises NotFound
    for a forged token.  A delivery deleted since is not counted.
    """
    delivery_id = read_open(secret_key, token)
    if delivery_id is None:
        raise NotFound("No such image.")
    if not record or session.get(Delivery, delivery_id) is None:
        return
    session.execute(
        _insert(session, EmailOpen)
        .values(delivery_id=delivery_id, opened_at=now)
        .on_conflict_do_nothing(index_elements=[EmailOpen.delivery_id])
    )


def record_click(
    session: DbSession, *, secret_key: str, token: str, record: bool, now: datetime
) -> str:
    """The address a click token leads to, counting the click; NotFound for a forged token.

    Each delivery's clicks on a link are one row: its first click and how
    many there were.  ``record`` false (the setting off): nothing is written,
    but the link still leads where the email said.
    """
    found = read_click(secret_key, token)
    if found is None:
        raise NotFound("This link is not valid.")
    delivery_id, url = found
    if not record or session.get(Delivery, delivery_id) is None:
        return url
    statement = _insert(session, EmailClick).values(
        delivery_id=delivery_id,
        link_key=hashlib.sha256(url.encode()).hexdigest()[:32],
        url=url,
        clicks=1,
        first_at=now,
    )
    table = EmailClick.__table__
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.delivery_id, table.c.link_key],
            set_={"clicks": table.c.clicks + 1},
        )
    )
    return url
