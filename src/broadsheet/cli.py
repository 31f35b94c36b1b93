"""The ``broadsheet`` command: a Flask CLI group, so Flask-Migrate's ``db`` commands work too.

Each command parses its options, calls one service, commits once, and turns
a domain error into one line on stderr with a non-zero exit.
"""

from __future__ import annotations

import contextlib
import gc
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import flask_migrate
from flask import Flask, current_app
from flask.cli import FlaskGroup, routes_command, shell_command
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.serving import run_simple

from broadsheet import demo as demo_content
from broadsheet.accounts import services as accounts
from broadsheet.accounts.models import Role
from broadsheet.accounts.permissions import OPERATOR
from broadsheet.config import ConfigError
from broadsheet.content import search
from broadsheet.content.models import Post
from broadsheet.errors import DomainError
from broadsheet.extensions import db, utcnow
from broadsheet.media import services as media_services
from broadsheet.media.storage import current_store
from broadsheet.porting import export as porting_export
from broadsheet.porting import images as porting_images
from broadsheet.porting import services as porting


def _fail(message: str, code: int = 1) -> None:
    for line in message.splitlines() or [message]:
        click.echo(f"broadsheet: {line}", err=True)
    sys.exit(code)


def door(func: Callable[..., Any]) -> Callable[..., Any]:
    """Commit after the command succeeds; roll back and print one line when it fails."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            result = func(*args, **kwargs)
            db.session.commit()
            return result
        except DomainError as exc:
            db.session.rollback()
            _fail(exc.message)

    return run


def _interactive() -> bool:
    return sys.stdin.isatty()


def register_commands(app: Flask) -> None:
    cli = app.cli

    @cli.command("init")
    @click.option("--owner-email", help="Email of the owner account to create.")
    @click.option("--owner-password", help="Its password (prompted for when interactive).")
    @click.option("--owner-name", help="Its display name.")
    @door
    def init(owner_email: str | None, owner_password: str | None, owner_name: str | None) -> None:
        """Create or upgrade the schema, and the owner account."""
        upgrade_schema()
        if accounts.owner_exists(db.session):
            click.echo("Schema is up to date; the owner account already exists.")
            return
        if owner_email is None and _interactive():
            owner_email = click.prompt("Owner email")
        if owner_email is None:
            click.echo("Schema is up to date. No owner yet: run broadsheet init --owner-email E.")
            return
        if owner_name is None and _interactive():
            owner_name = click.prompt("Display name", default=owner_email.split("@")[0])
        if owner_password is None and _interactive():
            owner_password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        owner = accounts.create_user(
            db.session,
            email=owner_email,
            role=Role.OWNER,
            name=owner_name,
            password=owner_password,
            now=utcnow(),
            actor=OPERATOR,
        )
        click.echo(f"Schema is up to date; owner {owner.email} created.")

    @cli.group("user")
    def user_group() -> None:
        """Staff accounts."""

    @user_group.command("create")
    @click.argument("email")
    @click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
    @click.option(
        "--name",
        help="The display name bylines show; prompted for when interactive, "
        "else the part of the email before the @.",
    )
    @click.option("--password", help="Prompted for when interactive and not given.")
    @door
    def user_create(email: str, role: str, name: str | None, password: str | None) -> None:
        """Create a staff account."""
        if name is None and _interactive():
            name = click.prompt("Display name", default=email.split("@")[0])
        if password is None and _interactive():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        # The command line acts as the operator, with the owner's rights (accounts.permissions).
        user = accounts.create_user(
            db.session, email=email, role=role, name=name, password=password, now=utcnow(),
            actor=OPERATOR,
        )  # fmt: skip
        click.echo(f"Created {user.role.value} {user.email} ({user.name}).")

    @cli.group("token")
    def token_group() -> None:
        """Admin API tokens."""

    @token_group.command("create")
    @click.argument("email")
    @click.option("--label", default="", help="What the token is for.")
    @door
    def token_create(email: str, label: str) -> None:
        """Print a new Admin API token for a staff account; it is shown only once."""
        user = accounts.find_user(db.session, email)
        _token, secret = accounts.create_token(db.session, user, label=label, now=utcnow())
        click.echo(secret)

    @token_group.command("list")
    @click.argument("email")
    @door
    def token_list(email: str) -> None:
        """List a staff account's tokens: id, label, created, last used, revoked."""
        user = accounts.find_user(db.session, email)
        for token in accounts.staff_tokens(db.session, user):
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "live"
            click.echo(
                f"{token.id}\t{token.label or '-'}\tcreated {token.created_at:%Y-%m-%d %H:%M}"
                f"\tlast used {used}\t{state}"
            )

    @token_group.command("revoke")
    @click.argument("token_id", type=int)
    @door
    def token_revoke(token_id: int) -> None:
        """Revoke a token by its id (see `broadsheet token list`)."""
        token = accounts.revoke_token(db.session, token_id, now=utcnow())
        click.echo(f"Token {token.id} ({token.label or 'no label'}) is revoked.")

    @cli.group("media")
    def media_group() -> None:
        """Uploaded images."""

    @media_group.command("gc")
    @door
    def media_gc() -> None:
        """Remove uploads that no post uses and that are older than a day; list them."""
        removed = media_services.collect_garbage(
            db.session, actor=OPERATOR, now=utcnow(), store=current_store()
        )
        for image in removed:
            click.echo(
                f"removed {image.name} ({image.width}x{image.height}, {image.byte_size} bytes, "
                f"uploaded {image.created_at:%Y-%m-%d})"
            )
        click.echo(f"Removed {len(removed)} unused image(s).")

    @cli.command("demo")
    @click.option("--posts", default=60, show_default=True, type=click.IntRange(0, 10_000_000))
    @click.option("--tags", default=40, show_default=True, type=click.IntRange(1, 100_000))
    @click.option("--authors", default=4, show_default=True, type=click.IntRange(1, 1000))
    @click.option(
        "--subscribers", default=0, show_default=True, type=click.IntRange(0, 10_000_000),
        help="Newsletter subscribers to add: mostly confirmed, some choosing tags.",
    )  # fmt: skip
    @click.option("--seed", default=1, show_default=True, type=int)
    @door
    def demo(posts: int, tags: int, authors: int, subscribers: int, seed: int) -> None:
        """Fill the database with realistic, deterministic demo content."""
        started = time.perf_counter()
        report = demo_content.fill(
            db.session, posts=posts, tags=tags, authors=authors, subscribers=subscribers,
            now=utcnow(), seed=seed,
        )  # fmt: skip
        click.echo(
            f"Added {report.posts} posts, {report.tags} tags, {report.authors} authors, "
            f"{report.pages} pages and {report.subscribers} subscribers "
            f"in {time.perf_counter() - started:.1f} s."
        )

    @cli.group("search")
    def search_group() -> None:
        """The search index."""

    @search_group.command("reindex")
    @door
    def search_reindex() -> None:
        """Rebuild the search index (after an upgrade, or a change of SITE_LANGUAGE)."""
        started = time.perf_counter()
        language = current_app.config["SITE_LANGUAGE"]
        total = search.posts_to_index(db.session)
        with click.progressbar(length=total, label=f"Indexing ({language})") as bar:
            done = search.reindex(
                db.session, actor=OPERATOR, language=language, progress=bar.update
            )
        click.echo(f"Indexed {done} posts and pages in {time.perf_counter() - started:.1f} s.")

    @cli.command("import")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="Show what would be imported; change nothing.")
    @click.option(
        "--old-site",
        metavar="URL",
        default=None,
        help="The old site's address, to fetch images named by a path alone (Ghost).",
    )
    def import_file(file: Path, dry_run: bool, old_site: str | None) -> None:
        """Import a WordPress (WXR), Ghost (JSON), Ghost members or Substack subscribers (CSV)
        export, or a Broadsheet archive (zip).  Safe to run again: nothing is imported twice.
        The posts' images are downloaded into the media library where the old site answers."""
        now = utcnow()
        try:
            with file.open("rb") as upload:
                job = porting.start_import(
                    db.session, actor=OPERATOR, now=now, upload=upload, filename=file.name,
                    folder=Path(current_app.instance_path) / "imports",
                    max_bytes=current_app.config["IMPORT_MAX_BYTES"],
                    old_site=old_site,
                )  # fmt: skip
        except DomainError as exc:
            db.session.rollback()
            _fail(exc.message)
        click.echo(porting.describe_summary(job.format, job.summary or {}))
        if dry_run:
            Path(job.path).unlink(missing_ok=True)
            db.session.rollback()
            click.echo("Dry run: nothing was changed.")
            return
        db.session.commit()
        with click.progressbar(length=max(1, job.total), label="Importing") as bar:
            try:
                fetching = porting_images.fetching_for(current_app.config, current_store())
                for done in porting.run_import(db.session, job, actor=OPERATOR, now=now,
                                               fetching=fetching):  # fmt: skip
                    db.session.commit()
                    bar.update(min(done, job.total) - bar.pos)
            except (porting.ImportRefused, DomainError) as exc:
                db.session.rollback()
                porting.fail_import(db.session, job.id, str(exc), now=utcnow())
                db.session.commit()
                _fail(f"the import stopped: {exc}")
        click.echo(porting.describe_report(job.report or {}))

    @cli.command("export")
    @click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
    @door
    def export(path: Path | None) -> None:
        """Write the whole site (posts, pages, tags, authors, settings, redirects, subscribers
        and media) to one zip archive that ``broadsheet import`` reads back."""
        path = path or Path(f"broadsheet-export-{utcnow():%Y%m%d-%H%M%S}.zip")
        with path.open("wb") as out:
            counts = porting_export.write_export(
                db.session, out, actor=OPERATOR, now=utcnow(),
                media=Path(current_app.config.get("MEDIA_ROOT") or
                           Path(current_app.instance_path) / "media"),
            )  # fmt: skip
        click.echo(f"Wrote {path}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))

    @cli.command("run")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True, type=int)
    def run(host: str, port: int) -> None:
        """Run the site with a worker and the scheduler beside it; Ctrl-C stops them all."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        prepare_first_run(app)
        worker = SupervisedWorker(_child_env(app))
        gc.freeze()  # the loaded app, out of the collector's way (see gunicorn.conf.py)
        try:
            # app.run() is a no-op under a Flask CLI group, so serve with Werkzeug directly.
            run_simple(host, port, app, threaded=True, use_reloader=False)
        finally:
            worker.stop()


class SupervisedWorker:
    """The worker and the beat beside the development server, started again if they die.

    A thread pool, not prefork: on the embedded broker a killed pool child leaves its
    worker stuck (the message it held is never redelivered), while a whole process that
    dies is simply restarted here, and the sweeper on the beat resends what it held.
    """

    COMMAND = ("-m", "celery", "-A", "broadsheet.worker", "worker", "--beat",
               "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO")  # fmt: skip

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lock = threading.Lock()
        self.stopping = False
        self.process = self._start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _start(self) -> subprocess.Popen[bytes]:
        # Its own session: Ctrl-C reaches the runner, which stops the worker itself.  Through
        # the lifeline, a runner that dies without stopping it (SIGKILL, a crash) takes the
        # worker with it, so no worker outlives the runner holding the embedded broker.
        lifeline = (sys.executable, LIFELINE, str(os.getpid()))
        return subprocess.Popen([*lifeline, sys.executable, *self.COMMAND], env=self.env,
                                start_new_session=True)  # fmt: skip

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            with self.lock:
                if self.stopping:
                    return
                if self.process.poll() is not None:
                    click.echo("broadsheet: the worker stopped; starting it again", err=True)
                    self._signal_group(signal.SIGKILL)  # what it left behind (its beat)
                    self.process = self._start()

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=5)


# Run as a file, not as ``-m broadsheet.lifeline``: it needs only the standard library, and
# importing the package first would cost the worker's start a second.
LIFELINE = str(Path(__file__).with_name("lifeline.py"))


def _child_env(app: Flask) -> dict[str, str]:
    return {**os.environ, "BROADSHEET_INSTANCE": app.instance_path}


def upgrade_schema() -> None:
    flask_migrate.upgrade(directory=current_app.extensions["migrate"].directory)


def prepare_first_run(app: Flask) -> None:
    """Bring the schema up to date; on an empty site, add an owner and demo content."""
    upgrade_schema()
    if not accounts.owner_exists(db.session):
        password = secrets.token_urlsafe(12)
        accounts.create_user(
            db.session, email="owner@localhost.localdomain", role=Role.OWNER, name="Owner",
            password=password, now=utcnow(), actor=OPERATOR,
        )  # fmt: skip
        click.echo(f"Owner account: owner@localhost.localdomain, password {password}")
    if not db.session.scalar(select(func.count()).select_from(Post)):
        report = demo_content.fill(db.session, posts=60, tags=40, authors=4, now=utcnow())
        click.echo(f"Added {report.posts} demo posts.")
    db.session.commit()


def _load_app() -> Flask:
    from broadsheet import create_app

    return create_app()


# Flask's own `run` would shadow ours (which starts the worker too): keep only shell and routes.
cli = FlaskGroup(
    name="broadsheet",
    create_app=_load_app,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=True,
    help="Broadsheet: a small, fast publishing platform.",
)
cli.add_command(shell_command)
cli.add_command(routes_command)


def main() -> None:
    try:
        cli.main(prog_name="broadsheet")
    except ConfigError as exc:
        _fail(str(exc), code=2)
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        _fail(f"cannot reach the database: {reason}")
