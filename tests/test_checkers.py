"""Two outside checkers read every kind of page the site and the admin serve.

The Nu Html Checker (vnu.jar, from npm's ``vnu-jar``, on the machine's Java)
reads each page's HTML as the server sent it; axe-core (from npm) runs inside
Debian's Chromium on the page as a reader sees it, with the WCAG 2.0, 2.1 and
2.2 A and AA rules.  Any HTML error fails the test, as does any axe violation
of serious or critical impact; lesser ones are printed.  ``make test``
installs both packages into tests/checkers/node_modules (pinned by its
package-lock.json); where Java or the packages are missing the test is
skipped (and fails under BROADSHEET_REQUIRE_SERVICES=1, as in CI).

One browser and one vnu run for all the pages, on SQLite only: the HTML does
not depend on the database.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from broadsheet import create_app
from broadsheet.accounts.models import Role, User
from broadsheet.accounts.tokens import password_reset_token
from broadsheet.content.models import PostKind, PostRevision, PostStatus, Tag
from broadsheet.content.services import load_post, update_post
from broadsheet.extensions import db, utcnow
from broadsheet.media import services as media
from broadsheet.media import work
from broadsheet.media.models import Image
from broadsheet.media.storage import FolderStore
from broadsheet.newsletter.models import SubscriberStatus
from broadsheet.newsletter.sending import publish_with_email
from broadsheet.newsletter.tokens import Purpose, make_token
from broadsheet.porting.services import start_import
from broadsheet.stats import rollup
from broadsheet.stats.recording import Tally, ViewKey, record_views
from tests import services
from tests.browser import chromium, require_chromium, served
from tests.conftest import NOW, base_config
from tests.media_images import png
from tests.newsletter import make_subscriber
from tests.staff import PASSWORD

pytestmark = pytest.mark.browser

NODE_MODULES = Path(__file__).parent / "checkers" / "node_modules"
VNU_JAR = NODE_MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = NODE_MODULES / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = {"serious", "critical"}
CANARY = """<!doctype html><html lang="en"><title>Canary</title><main>
<form action=""><input type="text" name="q"></form></main></html>"""


def require_checkers() -> None:
    require_chromium()
    if shutil.which("java") is None:
        services.missing("Java is not installed (the Nu Html Checker runs on it)")
    for needed in (VNU_JAR, AXE_JS):
        if not needed.is_file():
            services.missing(f"{needed} is missing: `make test` installs it with npm")


def vnu_errors(files: list[Path]) -> list[str]:
    """Every HTML error the Nu Html Checker finds in ``files``, one JVM for all of them."""
    # The quick compiler only: less than half the CPU time for one short run (1.6 s against
    # 3.9 s for these pages).  vnu needs a deep stack for its schema: with the quick
    # compiler's larger frames 512 KB overflows, so 4 MB.
    java = ["java", "-XX:TieredStopAtLevel=1", "-Xss4m", "-jar", str(VNU_JAR)]
    result = subprocess.run(
        [*java, "--format", "json", "--errors-only", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        report = json.loads(result.stderr or result.stdout)  # vnu writes its report to stderr
    except ValueError:
        return [f"vnu.jar exited with {result.returncode}: {result.stderr[-500:]}"]
    errors = []
    for message in report["messages"]:
        where = Path(message.get("url", "?")).name
        errors.append(
            f"{where}:{message.get('lastLine', '?')}: {message.get('message')} "
            f"[{message.get('extract', '').strip()}]"
        )
    if result.returncode not in (0, 1) or (result.returncode == 1 and not errors):
        errors.append(f"vnu.jar exited with {result.returncode}: {result.stderr[-500:]}")
    return errors


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 AA violations on the page Chromium shows now."""
    page.evaluate(_axe_source())  # not a <script> tag: the site's CSP would refuse it
    violations: list[dict[str, Any]] = page.evaluate(
        """tags => axe.run(document, {runOnly: {type: "tag", values: tags},
                                      resultTypes: ["violations"]})
                   .then(result => result.violations.map(v => ({
                       id: v.id, impact: v.impact, help: v.help,
                       targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5)})))""",
        AXE_TAGS,
    )
    return violations


@dataclass
class Checked:
    """What both checkers said about the pages opened so far."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def check(self, name: str, page: Page, html: str) -> None:
        """Keep the HTML for vnu.jar, and run axe-core now."""
        path = self.folder / f"{len(self.files) + 1:02d}-{name}.html"
        path.write_text(html)
        self.files.append(path)
        self.check_axe(name, page)

    def check_axe(self, name: str, page: Page) -> None:
        for violation in axe_violations(page):
            line = (
                f"{name} ({page.url}): axe {violation['impact']} {violation['id']}: "
                f"{violation['help']} at {violation['targets']}"
            )
            (self.failures if violation["impact"] in FAILING_IMPACTS else self.notes).append(line)


@dataclass
class Site:
    url: str
    app: Flask
    owner: User
    ids: dict[str, Any]


@pytest.fixture
def site(
    app: Flask, database_url: str, tmp_path: Path, make_user: Any, make_post: Any
) -> Iterator[Site]:
    """Every kind of content a page can show, served on 127.0.0.1 to a browser."""
    require_checkers()
    owner = make_user(Role.OWNER, email="olu@example.com", name="Olu Owner", password=PASSWORD)
    editor = make_user(Role.EDITOR, email="eda@example.com", name="Eda Editor", password=PASSWORD)
    for number in range(1, 13):
        make_post(
            f"Notes from week {number}",
            tags=["Flask", "Python"],
            markdown=f"Week {number}, with `code` and a [link](https://example.com/{number}).",
            now=NOW - timedelta(days=number),
        )
    image = _processed_image(tmp_path / "live" / "media", owner)
    post = make_post(
        "Fast tag archives",
        tags=["Flask", "PostgreSQL"],
        markdown="A paragraph.\n\n```python\nprint('hi')\n```\n\n> A quote.\n\n- one\n- two"
        f"\n\n{media.markdown_for(image)}\n",
        authors=[owner, editor],
        featured=True,
    )
    media.choose_feature_image(db.session, post, media.image_address(image), actor=owner)
    db.session.commit()
    make_post("About", kind=PostKind.PAGE, slug="about", markdown="Who writes here, and why.")
    draft = load_post(
        db.session, make_post("A draft in progress", status=PostStatus.DRAFT, authors=[owner]).id
    )
    for minutes, title in ((5, "A draft, edited"), (9, "A draft, edited again")):
        update_post(
            db.session,
            draft,
            actor=owner,
            expected_version=draft.version,
            now=NOW + timedelta(minutes=minutes),
            title=title,
            markdown=f"Second thoughts at {minutes}.",
            tags=["Flask"],
            note="tightened the title",
        )
        db.session.commit()
    subscriber = make_subscriber("reader@example.com", tags=["Flask"])
    make_subscriber("pending@example.com", status=SubscriberStatus.PENDING)
    emailed = load_post(
        db.session,
        make_post(
            "Sent to subscribers", status=PostStatus.DRAFT, authors=[owner], tags=["Python"]
        ).id,
    )
    scratch = make_post("Scratch draft", status=PostStatus.DRAFT, authors=[owner])
    send = publish_with_email(db.session, emailed, actor=owner, now=NOW)
    db.session.commit()
    assert send is not None
    with (Path(__file__).parent / "fixtures" / "porting" / "wordpress.xml").open("rb") as upload:
        job = start_import(db.session, actor=owner, now=NOW, upload=upload,
                           filename="wordpress.xml", folder=tmp_path / "imports")  # fmt: skip
    db.session.commit()
    _stats_for(post)
    key = app.config["SECRET_KEY"]
    ids = {
        "post": post.slug,
        "draft": draft.id,
        "scratch": scratch.id,
        "revision": db.session.query(PostRevision).filter_by(post_id=draft.id).first().id,
        "send": send.id,
        "image": image.id,
        "emailed": emailed.id,
        "author": owner.slug,
        "tag": db.session.query(Tag).filter_by(name="Flask").one().id,
        "editor": editor.id,
        "import": job.id,
        "reset": password_reset_token(owner, secret_key=key),
        "confirm": make_token(key, Purpose.CONFIRM, subscriber.id, subscriber.email),
        "unsubscribe": make_token(key, Purpose.UNSUBSCRIBE, subscriber.id, subscriber.email),
        "preferences": make_token(key, Purpose.PREFERENCES, subscriber.id, subscriber.email),
    }
    db.session.remove()  # the server's threads open their own sessions
    apps: list[Flask] = []  # built once the port, and so SITE_URL, is known
    with served(lambda env, start: apps[0](env, start)) as url:
        # Errors are answered as in production (the 500 page), not raised into the test.
        config = base_config(tmp_path / "live", database_url, SITE_URL=url)
        live = create_app({**config, "PROPAGATE_EXCEPTIONS": False})
        live.add_url_rule("/checker-fault/", "checker_fault", _fault)
        apps.append(live)
        try:
            yield Site(url, apps[0], owner, ids)
        finally:
            with apps[0].app_context():
                db.engine.dispose()


def _processed_image(root: Path, owner: User) -> Image:
    """An uploaded image with its variants made, in the live site's folder store."""
    store, limits = FolderStore(root), media.Limits(20_000_000, 60_000_000)
    image = media.upload_image(
        db.session, png(1600, 900), name="harbour.png", alt="Boats in a harbour", actor=owner,
        now=NOW, store=store, limits=limits,
    )  # fmt: skip
    db.session.commit()
    source = work.claim(db.session, image.id, now=NOW)
    assert source is not None
    assert work.process(db.session, image.id, source, store=store, limits=limits, now=NOW)
    db.session.commit()
    return image


def _stats_for(post: Any) -> None:
    """A few days of views, so that the stats pages show charts and full tables."""
    today = utcnow().replace(second=0, microsecond=0)
    for days_ago in range(4):
        key = ViewKey(
            today - timedelta(days=days_ago), f"/{post.slug}/", "example.org", "", post.slug
        )
        record_views(db.session, {key: Tally(10 + days_ago, {str(days_ago).encode()})})
    rollup.roll_up(db.session, now=utcnow(), retention_days=30)
    db.session.commit()


def _fault() -> None:
    """A page that fails, as any bug would, to show the 500 page."""
    raise RuntimeError("a fault for the checkers")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_page_passes_the_html_checker_and_axe(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    folder = tmp_path / "pages"
    folder.mkdir()
    checked = Checked(folder)
    page = browser.new_page()
    ids = site.ids

    visited: list[tuple[str, str]] = []

    def visit(name: str, path: str, status: int = 200) -> None:
        visited.append((name, path))
        response = page.goto(site.url + path, wait_until="load")
        assert response is not None
        assert response.status == status, (name, path)
        checked.check(name, page, response.text())

    def submit(name: str, status: int = 200) -> None:
        """Submit the page's main form as it is filled, and check the page that answers."""
        with page.expect_navigation(wait_until="load") as navigation:
            page.locator("main form [type=submit]").first.click()
        response = navigation.value
        assert response is not None
        assert response.status == status, (name, page.url)
        checked.check(name, page, response.text())

    # The reader's site.
    visit("home", "/")
    visit("home-page-2", "/page/2/")
    visit("post", f"/{ids['post']}/")
    visit("standalone-page", "/about/")
    visit("tag", "/tag/flask/")
    visit("author", f"/author/{ids['author']}/")
    visit("year", f"/{NOW:%Y}/")
    visit("month", f"/{NOW:%Y/%m}/")
    visit("search", "/search/")
    visit("search-results", "/search/?q=flask")
    visit("search-nothing-found", "/search/?q=flsk")
    visit("not-found", "/no-such-post/", status=404)
    visit("server-error", "/checker-fault/", status=500)

    # The newsletter's reader pages.
    visit("subscribe", "/subscribe/")
    visit("subscribe-to-a-tag", "/subscribe/?tag=flask")
    page.fill("input[type=email]", "reader@localhost")
    submit("subscribe-refused", status=422)
    visit("subscribe-again", "/subscribe/")
    page.fill("input[type=email]", "new.reader@example.com")
    submit("subscribe-check-inbox")
    visit("confirm", f"/subscribe/confirm/{ids['confirm']}")
    visit("confirm-bad-link", "/subscribe/confirm/forged", status=404)
    visit("preferences", f"/preferences/{ids['preferences']}")
    submit("preferences-saved")
    visit("unsubscribe", f"/unsubscribe/{ids['unsubscribe']}")
    submit("unsubscribed")

    # The admin, signed out.
    visit("sign-in", "/admin/login")
    page.get_by_label("Email").fill("olu@example.com")
    page.get_by_label("Password").fill("not the password")
    submit("sign-in-refused", status=401)
    visit("password-reset-request", "/admin/password-reset/")
    visit("password-reset", f"/admin/password-reset/{ids['reset']}")

    # The admin, signed in as the owner, who sees every page.
    visit("sign-in-again", "/admin/login")
    page.get_by_label("Email").fill("olu@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(site.url + "/admin/")
    visit("dashboard", "/admin/")
    visit("posts", "/admin/posts/")
    visit("posts-searched", "/admin/posts/?q=flask")
    visit("editor-new", "/admin/posts/new")
    page.get_by_label("Title", exact=True).fill("A post with a bad address")
    page.get_by_label("Slug").fill("not a slug!")
    with page.expect_navigation(wait_until="load") as navigation:
        page.get_by_role("button", name="Save draft").click()
    assert navigation.value is not None
    checked.check("editor-refused", page, navigation.value.text())
    visit("editor-edit", f"/admin/posts/{ids['draft']}/")
    # Someone else saves the draft; the editor's next autosave shows the difference.
    with site.app.app_context():
        draft = load_post(db.session, ids["draft"])
        update_post(
            db.session,
            draft,
            actor=site.owner,
            expected_version=draft.version,
            now=NOW + timedelta(minutes=20),
            title=draft.title,
            markdown="Elsewhere.",
        )
        db.session.commit()
    page.get_by_label("Body (Markdown)").fill("Typed here.")
    conflict = page.get_by_role("region", name="Someone else saved this post")
    conflict.wait_for(timeout=15_000)
    checked.check("editor-conflict", page, page.content())
    conflict.get_by_role("button", name="Take the saved version").click()
    visit("publish-review", f"/admin/posts/{ids['draft']}/publish/")
    visit("revisions", f"/admin/posts/{ids['draft']}/revisions/")
    visit("email-preview", f"/admin/posts/{ids['draft']}/email/")
    visit("revision-compare", f"/admin/posts/{ids['draft']}/revisions/{ids['revision']}/")
    visit("tags", "/admin/tags/")
    visit("tag-edit", f"/admin/tags/{ids['tag']}/")
    visit("staff", "/admin/staff/")
    visit("redirects", "/admin/redirects/")
    visit("imports", "/admin/import/")
    visit("import-job", f"/admin/import/{ids['import']}/")
    visit("staff-member", f"/admin/staff/{ids['editor']}/")
    visit("settings", "/admin/settings/")
    visit("subscribers", "/admin/subscribers/")
    visit("sends", "/admin/sends/")
    visit("send-progress", f"/admin/sends/{ids['send']}/")
    visit("stats", "/admin/stats/")
    visit("stats-post", f"/admin/stats/posts/{ids['emailed']}/?days=7")
    visit("delete-confirm", f"/admin/posts/{ids['scratch']}/delete")
    visit("media-library", "/admin/media/")
    visit("media-image", f"/admin/media/{ids['image']}/")
    submit("trash")  # a draft moved to the trash; the trash lists it with its restore button
    visit("admin-not-found", "/admin/posts/999999/", status=404)

    # Every page again on a phone in dark mode, still signed in: axe only, the HTML is the same.
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    for name, path in visited:
        page.goto(site.url + path, wait_until="load")
        checked.check_axe(f"{name}, dark, phone", page)

    # A page with a known fault in each checker's eyes, so that a checker gone quiet is noticed.
    canary = folder / "canary.html"
    canary.write_text(CANARY)
    page.set_content(CANARY)
    assert [v["id"] for v in axe_violations(page)] == ["label"]
    html_errors = vnu_errors([*checked.files, canary])
    found = [e for e in html_errors if e.startswith("canary.html:")]
    assert len(found) == 1, html_errors
    assert "Bad value “” for attribute “action” on element “form”" in found[0]
    html_errors = [e for e in html_errors if not e.startswith("canary.html:")]
    for note in checked.notes:
        print("axe (moderate or minor):", note)
    problems = [*html_errors, *checked.failures]
    assert not problems, f"{len(problems)} problems over {len(checked.files)} pages:\n" + (
        "\n".join(problems)
    )
