"""The export round trip: a site exported and imported into an empty one is the same site."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from broadsheet.accounts.models import Role, User
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.accounts.services import create_user
from broadsheet.cli import upgrade_schema
from broadsheet.content.models import PostKind, PostStatus
from broadsheet.content.redirects import RedirectSource, point_at_path
from broadsheet.extensions import db
from broadsheet.newsletter.models import Subscriber, SubscriberStatus
from broadsheet.porting.export import write_export
from broadsheet.settings.services import update_site_settings
from tests.conftest import NOW, base_config
from tests.page_cache_support import another_app
from tests.porting_support import import_file


def _site(make_user: Any, make_post: Any) -> None:
    editor = make_user(Role.EDITOR, name="Ola Editor", email="ola@example.com")
    make_post("Roses in May", tags=["Roses", "Garden"], markdown="A *rose*.\n\n## Care\n\nWater.",
              excerpt="All about roses.", featured=True, meta_title="Roses, meta",
              published_at=NOW - timedelta(days=40))  # fmt: skip
    make_post("Tulips", tags=["Garden", "#planning"], authors=[editor],
              published_at=NOW - timedelta(days=3))  # fmt: skip
    make_post("About", kind=PostKind.PAGE, markdown="Who we are.")
    make_post("Not yet", status=PostStatus.DRAFT)
    update_site_settings(db.session, actor=OPERATOR, now=NOW, title="The Garden Gazette",
                         description="Roses and more.", timezone="Europe/Paris",
                         posts_per_page=1)  # fmt: skip
    point_at_path(db.session, "/old-roses/", "/roses-in-may/", source=RedirectSource.STAFF, now=NOW)
    db.session.add_all([
        Subscriber(email="a@example.com", status=SubscriberStatus.CONFIRMED, created_at=NOW,
                   confirmed_at=NOW, source="site", consent="Signed up on the site."),
        Subscriber(email="b@example.com", status=SubscriberStatus.UNSUBSCRIBED, created_at=NOW,
                   unsubscribed_at=NOW, source="site", consent="Signed up on the site."),
    ])  # fmt: skip
    db.session.commit()


def _public_pages(client: Any) -> dict[str, bytes]:
    """Every address the sitemap lists, the feeds, and each archive's later pages."""
    index = client.get("/sitemap.xml").text
    found = set(re.findall(r"<loc>https://blog\.example\.com(/[^<]*)</loc>", index))
    for part in [p for p in found if p.endswith(".xml")]:
        found |= set(re.findall(r"<loc>https://blog\.example\.com(/[^<]*)</loc>",
                                client.get(part).text))  # fmt: skip
    found |= {"/feed/", "/page/2/", "/tag/garden/page/2/", "/old-roses/"}
    pages = {}
    for path in sorted(found):
        response = client.get(path)
        pages[path] = response.status_code, response.headers.get("Location"), response.data
    return pages


def test_an_exported_site_imported_into_an_empty_one_shows_the_same_pages(
    app: Flask, make_user: Any, make_post: Any, tmp_path: Path
) -> None:
    _site(make_user, make_post)
    before = _public_pages(app.test_client())
    assert len(before) > 10
    out = io.BytesIO()
    counts = write_export(db.session, out, actor=OPERATOR, now=NOW)
    assert counts["posts"] == 4
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert "posts/roses-in-may.md" in archive.namelist()
    (tmp_path / "site.zip").write_bytes(out.getvalue())

    empty = base_config(tmp_path / "second", f"sqlite:///{tmp_path / 'second.db'}")
    with another_app(app, empty) as second:
        upgrade_schema()
        create_user(db.session, email="owner@second.example.com", role=Role.OWNER, now=NOW,
                    actor=OPERATOR)  # fmt: skip
        db.session.commit()
        job = import_file(tmp_path / "site.zip", tmp_path / "imports")
        assert (job.report or {})["created"]["posts"] == 3
        after = _public_pages(second.test_client())
        subscribers = {s.email: (s.status, s.consent)
                       for s in db.session.scalars(select(Subscriber))}  # fmt: skip
        staff = {u.email: u.role for u in db.session.scalars(select(User))}
    assert sorted(after) == sorted(before)
    for path in before:
        assert after[path] == before[path], path
    assert subscribers == {
        "a@example.com": (SubscriberStatus.CONFIRMED, "Signed up on the site."),
        "b@example.com": (SubscriberStatus.UNSUBSCRIBED, "Signed up on the site."),
    }
    assert staff["ola@example.com"] is Role.EDITOR
