"""Broadsheet: a self-hosted publishing platform.

``create_app`` builds the application: settings from the environment (or the
``config`` mapping, which wins), the extensions, the blueprints, the Celery
app, and the ``broadsheet`` commands.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psycopg
from flask import Flask
from jinja2 import ChoiceLoader, FileSystemLoader, PackageLoader
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from broadsheet import headers, page_cache
from broadsheet.config import ConfigError, default_instance_path, load_settings
from broadsheet.extensions import csrf, db, limiter, login_manager, mail, migrate
from broadsheet.guards import limit_bodies, refuse_nul_bytes
from broadsheet.logs import configure_logging
from broadsheet.queue import celery_init_app
from broadsheet.stats import counting

__all__ = ["ConfigError", "create_app"]
MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    instance = Path(config["INSTANCE_PATH"]) if config and "INSTANCE_PATH" in config else None
    instance = instance or default_instance_path()
    app = Flask(__name__, instance_path=str(instance))
    app.config.update(load_settings(os.environ, instance, config))
    instance.mkdir(parents=True, exist_ok=True)
    configure_logging(app)
    page_cache.init_app(app)  # inside ProxyFix: it must see the request as the app does
    counting.init_app(app)  # around the page cache: its hits are views too
    if app.config["PROXY_HOPS"]:
        # The client's address and scheme only: X-Forwarded-Host is whatever the client sent,
        # so absolute URLs are built from SITE_URL (urls.absolute_url), never from the request.
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    from broadsheet.site import media as media_files

    media_files.init_app(app)  # uploaded images' variants, before Flask; inside the headers
    headers.init_app(app)  # outermost: pages the cache answers carry the headers too
    app.before_request(limit_bodies)
    app.before_request(refuse_nul_bytes)

    # Files under instance/templates/ override the bundled templates.
    # The newsletter keeps its email templates; the doors' page templates are their blueprints'.
    app.jinja_loader = ChoiceLoader(
        [
            FileSystemLoader(str(instance / "templates")),
            app.jinja_loader,  # type: ignore[list-item]
            PackageLoader("broadsheet.newsletter", "templates"),
            PackageLoader("broadsheet.accounts", "templates"),
            PackageLoader("broadsheet", "templates"),  # email/layout.html, every email's
        ]
    )

    db.init_app(app)
    from broadsheet.content import search as search_schema

    migrate.init_app(
        app,
        db,
        directory=str(MIGRATIONS),
        render_as_batch=True,
        include_name=search_schema.outside_models,  # the search index's own tables
    )
    mail.init_app(app)
    celery_init_app(app)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    # Models and tasks register themselves on import.
    from broadsheet.accounts import models as _accounts  # noqa: F401
    from broadsheet.accounts import tasks as _account_tasks  # noqa: F401
    from broadsheet.admin import bp as admin_bp
    from broadsheet.content import models as _content  # noqa: F401
    from broadsheet.content import redirects as _redirects  # noqa: F401
    from broadsheet.content import tasks as _content_tasks  # noqa: F401
    from broadsheet.mail_layout import SITE_TITLE
    from broadsheet.media import hooks as _media_hooks  # noqa: F401
    from broadsheet.media import models as _media  # noqa: F401
    from broadsheet.media import tasks as _media_tasks  # noqa: F401
    from broadsheet.newsletter import models as _newsletter  # noqa: F401
    from broadsheet.newsletter import tasks as _newsletter_tasks  # noqa: F401
    from broadsheet.ops import bp as ops_bp
    from broadsheet.outbox import models as _outbox  # noqa: F401
    from broadsheet.outbox import tasks as _outbox_tasks  # noqa: F401
    from broadsheet.porting import models as _porting  # noqa: F401
    from broadsheet.porting import tasks as _porting_tasks  # noqa: F401
    from broadsheet.settings import models as _settings  # noqa: F401
    from broadsheet.settings.services import site_settings
    from broadsheet.site import errors as _site_errors  # noqa: F401 (the error pages)
    from broadsheet.site import search as _site_search  # noqa: F401 (the search page)
    from broadsheet.site.feeds import bp as feeds_bp
    from broadsheet.site.media import bp as media_bp
    from broadsheet.site.newsletter import bp as newsletter_bp
    from broadsheet.site.sitemap import bp as sitemap_bp
    from broadsheet.site.tracking import bp as tracking_bp
    from broadsheet.site.views import bp as site_bp
    from broadsheet.stats import models as _stats  # noqa: F401
    from broadsheet.stats import tasks as _stats_tasks  # noqa: F401

    app.extensions[SITE_TITLE] = lambda: site_settings(db.session).title
    app.register_blueprint(ops_bp)
    app.register_blueprint(site_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(sitemap_bp)
    app.register_blueprint(newsletter_bp)
    app.register_blueprint(tracking_bp)

    from broadsheet.api import init_api

    init_api(app)

    from broadsheet.cli import register_commands

    register_commands(app)
    return app


@event.listens_for(Engine, "connect")
def _connection_settings(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: foreign keys on, and WAL so that readers never wait for the writer.

    PostgreSQL: a random page read costs the planner 1.1 sequential ones, not 4 (the
    default, for spinning disks).  A site's working set is in memory or on SSD; with the
    default, the tags of each card on a page were found by reading all the tags (a hash join,
    0.15 ms a card) rather than by their key (0.02 ms): 1.5 ms of the 2.8 ms statement that
    read a search page's ten cards.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()
    elif isinstance(dbapi_connection, psycopg.Connection):
        dbapi_connection.execute("SET random_page_cost = 1.1")
        dbapi_connection.commit()
