"""Settings, read once from the environment, with the embedded defaults.

Every setting is parsed and validated here, so that a missing or malformed
one stops start-up with one line naming it instead of failing deep inside a
request.  Nothing reads the environment at import time: ``load_settings`` is
called by the application factory.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MAIL_BACKENDS = ("smtp", "console", "file", "memory")
UNSAFE_MAIL_BACKENDS = ("console", "file")  # refused in production
BROKER_SCHEMES = ("amqp", "amqps", "pyamqp", "redis", "rediss", "memory", "sqla", "sqlalchemy")
SITEMAP_LIMIT = 50_000  # URLs in one sitemap file, by sitemaps.org
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
MIB = 1024 * 1024


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message is one line per problem."""


def database_url(raw: str) -> str:
    """Normalise a database URL for SQLAlchemy and psycopg 3.

    Heroku hands out ``postgres://``, which SQLAlchemy no longer accepts, and
    a bare ``postgresql://`` would pick psycopg2; both become
    ``postgresql+psycopg://``.
    """
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise ValueError("is not a URL (expected postgresql://… or sqlite:///…)")
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg"
    if scheme not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise ValueError(f"uses {scheme}://, but Broadsheet runs on postgresql:// or sqlite:///")
    url = f"{scheme}://{rest}"
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"cannot be parsed ({exc})") from None
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        raise ValueError("names no database (expected postgresql://user@host:5432/name)")
    return url


def is_postgresql(url: str) -> bool:
    return url.startswith("postgresql")


def _boolean(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"is {value!r}; use true or false")


def _integer(value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"is {value!r}, not a whole number") from None
    if not low <= number <= high:
        raise ValueError(f"is {number}; it must be between {low} and {high}")
    return number


def _seconds_list(value: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"is {value!r}; use seconds separated by commas: 60,300,1800") from None
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"is {value!r}; use one or more non-negative numbers of seconds")
    return delays


def _site_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"is {value!r}; use an absolute http(s) URL such as https://example.com")
    return value.rstrip("/")


def trusted_hosts(site_url: str) -> list[str]:
    """The Host names the site answers to: SITE_URL's, and the loopback names (a check run
    on the machine itself; such a name can only reach it from there).  Any other gets 400."""
    name = urlsplit(site_url).hostname or ""
    return list(dict.fromkeys([name, *LOOPBACK_HOSTS]))


def _bucket(value: str) -> str:
    # S3's naming rules, which the S3-compatible stores follow too.
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value):
        raise ValueError(f"is {value!r}; a bucket name is 3-63 lower-case letters, digits, . and -")
    return value


def _timezone(value: str) -> str:
    # The same list the admin's settings form accepts.
    if value.strip() not in available_timezones():
        raise ValueError(f"is {value!r}; use an IANA time zone such as Europe/Paris or UTC")
    return value.strip()


# Text-search configurations PostgreSQL ships (``simple``: no stemming); SQLite stems English only.
SEARCH_LANGUAGES = ("simple", "danish", "dutch", "english", "finnish", "french", "german",
                    "hungarian", "italian", "norwegian", "portuguese", "romanian", "russian",
                    "spanish", "swedish", "turkish")  # fmt: skip


def _search_language(value: str) -> str:
    if value.strip().lower() not in SEARCH_LANGUAGES:
        raise ValueError(f"is {value!r}; use one of {', '.join(SEARCH_LANGUAGES)}")
    return value.strip().lower()


def _page_cache_url(value: str) -> str:
    if value == "off" or value.partition("://")[0] in ("redis", "rediss", "unix"):
        return value
    raise ValueError(f"is {value!r}; use redis://host:6379/0 or off (unset: under instance/)")


def _broker_url(value: str) -> str:
    scheme = value.partition("://")[0]
    if scheme.split("+", 1)[0] not in BROKER_SCHEMES:
        raise ValueError(f"uses {scheme}://; use amqp://, redis:// or sqla+sqlite:///")
    return value


def _secret_key(instance: Path) -> str:
    """Read the secret kept under the instance folder, creating it the first time."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    # Created private; a second process racing us keeps whichever landed first.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def default_instance_path() -> Path:
    return Path(os.environ.get("BROADSHEET_INSTANCE", Path.cwd() / "instance")).resolve()


def load_settings(
    environ: Mapping[str, str], instance: Path, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build the Flask config from ``environ``; ``overrides`` win over it.

    Raises ConfigError listing every bad setting, one per line.
    """
    source: dict[str, Any] = {**environ, **(overrides or {})}
    errors: list[str] = []
    settings: dict[str, Any] = {}

    def read(name: str, parse: Any, default: Any = None) -> Any:
        raw = source.get(name)
        if raw is None or raw == "":
            return default
        if not isinstance(raw, str):
            return raw
        try:
            return parse(raw)
        except ValueError as exc:
            errors.append(f"{name} {exc}")
            return default

    env = str(source.get("BROADSHEET_ENV") or source.get("FLASK_ENV") or "development").lower()
    db_url = read("DATABASE_URL", database_url) or database_url(
        f"sqlite:///{instance / 'broadsheet.db'}"
    )
    production = env == "production" or is_postgresql(db_url)
    settings["BROADSHEET_ENV"] = env
    settings["PRODUCTION"] = production

    secret = source.get("SECRET_KEY")
    if not secret:
        if production:
            errors.append(
                "SECRET_KEY is not set; production (BROADSHEET_ENV=production or a PostgreSQL "
                "DATABASE_URL) needs one, e.g. SECRET_KEY=$(python -c "
                "'import secrets; print(secrets.token_hex(32))')"
            )
        else:
            secret = _secret_key(instance)
    elif production and len(str(secret)) < 16:
        errors.append("SECRET_KEY is too short for production; use at least 16 random characters")
    settings["SECRET_KEY"] = secret

    if env == "production":
        for name in ("DATABASE_URL", "SITE_URL"):
            if not source.get(name):
                errors.append(f"{name} is not set; production needs it")
        if not (source.get("CELERY_BROKER_URL") or source.get("CLOUDAMQP_URL")):
            errors.append("CELERY_BROKER_URL (or CLOUDAMQP_URL) is not set; production needs it")

    settings["SQLALCHEMY_DATABASE_URI"] = db_url
    settings["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(db_url)
    settings["SITE_URL"] = read("SITE_URL", _site_url, "http://127.0.0.1:5000")
    # Flask answers a request for any other Host with 400 (and the page cache never sees it).
    settings["TRUSTED_HOSTS"] = trusted_hosts(str(settings["SITE_URL"]))
    # The site's name and tagline until staff save their own in the admin's settings (which
    # then win); the 500 page, which reads no database, always shows these.
    settings["SITE_TITLE"] = read("SITE_TITLE", str, "Broadsheet")
    settings["SITE_DESCRIPTION"] = read(
        "SITE_DESCRIPTION", str, "Notes on software, written slowly."
    )
    settings["POSTS_PER_PAGE"] = read("POSTS_PER_PAGE", lambda v: _integer(v, 1, 100), 10)
    # The time zone of a site whose settings staff have not saved yet.
    settings["SITE_TIMEZONE"] = read("SITE_TIMEZONE", _timezone, "UTC")
    # The language search stems words in; `broadsheet search reindex` applies a change.
    settings["SITE_LANGUAGE"] = read("SITE_LANGUAGE", _search_language, "english")
    # URLs per sitemap file: sitemaps.org allows 50,000; a site may ask for smaller files.
    settings["SITEMAP_MAX_URLS"] = read(
        "SITEMAP_MAX_URLS", lambda v: _integer(v, 1, SITEMAP_LIMIT), SITEMAP_LIMIT
    )

    # The newsletter: recipients per task, the retry schedule for temporary SMTP errors, how
    # long a claim or an idle send may last before the sweeper takes its work back.
    settings["NEWSLETTER_BATCH_SIZE"] = read(
        "NEWSLETTER_BATCH_SIZE", lambda v: _integer(v, 1, 1000), 100
    )
    # Subscribers whose delivery rows one listing step writes (the publish writes the first).
    settings["NEWSLETTER_LIST_CHUNK"] = read(
        "NEWSLETTER_LIST_CHUNK", lambda v: _integer(v, 1, 100000), 5000
    )
    settings["NEWSLETTER_RETRY_DELAYS"] = read(
        "NEWSLETTER_RETRY_DELAYS", _seconds_list, (60.0, 300.0, 1800.0, 7200.0)
    )
    # Password resets and subscription confirmations (the outbox): people are waiting for them.
    settings["EMAIL_RETRY_DELAYS"] = read(
        "EMAIL_RETRY_DELAYS", _seconds_list, (30.0, 120.0, 600.0, 1800.0)
    )
    settings["NEWSLETTER_LEASE_SECONDS"] = read(
        "NEWSLETTER_LEASE_SECONDS", lambda v: _integer(v, 1, 86400), 120
    )
    settings["NEWSLETTER_STALL_SECONDS"] = read(
        "NEWSLETTER_STALL_SECONDS", lambda v: _integer(v, 1, 86400), 120
    )
    settings["NEWSLETTER_MAX_ERROR_STREAK"] = read(
        "NEWSLETTER_MAX_ERROR_STREAK", lambda v: _integer(v, 1, 100000), 50
    )
    # False: a message's "sent" mark no longer waits for PostgreSQL to flush it to disk.  A
    # worker or app crash still loses no committed mark; a crash of PostgreSQL itself can
    # lose the last moments of marks (up to about 0.6 s), and those messages go again.
    settings["NEWSLETTER_SYNCHRONOUS_COMMIT"] = read(
        "NEWSLETTER_SYNCHRONOUS_COMMIT", _boolean, True
    )
    sweep_seconds = read("NEWSLETTER_SWEEP_SECONDS", lambda v: _integer(v, 1, 3600), 30)

    broker_name = "CELERY_BROKER_URL" if source.get("CELERY_BROKER_URL") else "CLOUDAMQP_URL"
    broker = read(broker_name, _broker_url, f"sqla+sqlite:///{instance / 'broker.db'}")
    settings["CELERY"] = celery_settings(
        broker,
        queue=str(source.get("BROADSHEET_QUEUE") or "broadsheet"),
        beat_file=str(instance / "celerybeat-schedule"),
        eager=read("CELERY_TASK_ALWAYS_EAGER", _boolean, False),
        sweep_seconds=float(sweep_seconds),
    )

    # Console and file mail would put every reset, confirm and unsubscribe link in the logs
    # or on a dyno's disk: production sends through SMTP.
    backend = read("MAIL_BACKEND", str, "smtp" if production else "file")
    if backend not in MAIL_BACKENDS:
        errors.append(f"MAIL_BACKEND is {backend!r}; use one of {', '.join(MAIL_BACKENDS)}")
    elif production and backend in UNSAFE_MAIL_BACKENDS:
        errors.append(
            f"MAIL_BACKEND is {backend!r}, which writes reset and unsubscribe links where "
            "others read them; production (BROADSHEET_ENV=production or a PostgreSQL "
            "DATABASE_URL) needs smtp"
        )
    # Flask-Mailman calls the in-memory backend "locmem".
    settings["MAIL_BACKEND"] = "locmem" if backend == "memory" else backend
    settings["MAIL_FILE_PATH"] = str(source.get("MAIL_FILE_PATH") or instance / "mail")
    settings["MAIL_SERVER"] = read("MAIL_SERVER", str, "localhost")
    settings["MAIL_PORT"] = read("MAIL_PORT", lambda v: _integer(v, 1, 65535), 25)
    settings["MAIL_USE_TLS"] = read("MAIL_USE_TLS", _boolean, False)
    settings["MAIL_USE_SSL"] = read("MAIL_USE_SSL", _boolean, False)
    if settings["MAIL_USE_TLS"] and settings["MAIL_USE_SSL"]:
        errors.append("MAIL_USE_TLS and MAIL_USE_SSL are both true; choose one")
    settings["MAIL_USERNAME"] = read("MAIL_USERNAME", str, None)
    settings["MAIL_PASSWORD"] = read("MAIL_PASSWORD", str, None)
    settings["MAIL_DEFAULT_SENDER"] = read(
        "MAIL_DEFAULT_SENDER", str, "Broadsheet <broadsheet@localhost>"
    )
    if env == "production" and backend == "smtp" and not source.get("MAIL_SERVER"):
        errors.append("MAIL_SERVER is not set; MAIL_BACKEND=smtp needs it")
    # Proxies in front of the app (Heroku's router is one) whose X-Forwarded-* are believed:
    # without this every visitor has the router's address and shares one rate limit.
    settings["PROXY_HOPS"] = read("PROXY_HOPS", lambda v: _integer(v, 0, 5), 0)
    _media_settings(read, source, instance, settings, errors)
    # Forms and CSV imports; an image upload up to MEDIA_MAX_BYTES; the rest of the API: 1 MiB.
    settings["MAX_CONTENT_LENGTH"] = max(16 * MIB, settings["MEDIA_MAX_BYTES"] + MIB)
    settings["RATELIMIT_STORAGE_URI"] = read("RATELIMIT_STORAGE_URI", str, "memory://")
    # Whole public pages: a folder under instance/ by default, Redis when named, or off.
    settings["PAGE_CACHE_URL"] = read("PAGE_CACHE_URL", _page_cache_url, "")
    settings["PAGE_CACHE_PREFIX"] = read("PAGE_CACHE_PREFIX", str, "broadsheet:page:")
    # Page views counted on the server (stats/): no address, cookie or user agent kept.
    settings["STATS_ENABLED"] = read("STATS_ENABLED", _boolean, True)
    # Readers who send DNT: 1 or Sec-GPC: 1 are not counted unless this is false.
    settings["STATS_HONOUR_DNT"] = read("STATS_HONOUR_DNT", _boolean, True)
    # Days the per-minute rows are kept; the daily rows stay.  At least 2: yesterday is rolled up.
    settings["STATS_RETENTION_DAYS"] = read(
        "STATS_RETENTION_DAYS", lambda v: _integer(v, 2, 3650), 30
    )
    # Newsletter opens (a tracking pixel) and clicks (signed redirect links): off unless asked
    # for.  Mail clients that load images ahead of the reader (Apple Mail) inflate opens.
    settings["STATS_EMAIL_OPENS"] = read("STATS_EMAIL_OPENS", _boolean, False)
    settings["STATS_EMAIL_CLICKS"] = read("STATS_EMAIL_CLICKS", _boolean, False)
    # Staff sessions: signed cookies that script cannot read, sent only over HTTPS when the
    # site is served over HTTPS, and not on cross-site POSTs.
    https = str(settings["SITE_URL"]).startswith("https://")
    settings["SESSION_COOKIE_HTTPONLY"] = True
    settings["SESSION_COOKIE_SAMESITE"] = "Lax"
    settings["SESSION_COOKIE_SECURE"] = https
    settings["REMEMBER_COOKIE_HTTPONLY"] = True
    settings["REMEMBER_COOKIE_SAMESITE"] = "Lax"
    settings["REMEMBER_COOKIE_SECURE"] = https
    settings["PERMANENT_SESSION_LIFETIME"] = timedelta(days=14)
    settings["PASSWORD_RESET_MAX_AGE"] = 3600  # seconds a reset link stays good

    # Anything else given as an override (tests pass TESTING and friends).
    for key, value in (overrides or {}).items():
        if key not in settings and key.isupper():
            settings[key] = value

    if errors:
        raise ConfigError("\n".join(errors))
    return settings


def _media_settings(
    read: Any,
    source: Mapping[str, Any],
    instance: Path,
    settings: dict[str, Any],
    errors: list[str],
) -> None:
    """Uploaded images: size limits, and the store (a folder under instance/, or S3)."""
    settings["MEDIA_MAX_BYTES"] = read(
        "MEDIA_MAX_BYTES", lambda v: _integer(v, 1024, 200 * MIB), 20 * 1000 * 1000
    )
    # Pixels an image may hold: a small file can unpack to gigabytes (a decompression bomb).
    settings["MEDIA_MAX_PIXELS"] = read(
        "MEDIA_MAX_PIXELS", lambda v: _integer(v, 10_000, 500_000_000), 60_000_000
    )
    settings["MEDIA_ROOT"] = str(source.get("MEDIA_ROOT") or instance / "media")
    # Imports download the images posts refer to (porting/images.py has the rules): off, they
    # keep their old addresses.  Private and loopback addresses are refused unless
    # IMPORT_FETCH_PRIVATE is on (or TESTING): an import must not reach the server's network.
    settings["IMPORT_FETCH_IMAGES"] = read("IMPORT_FETCH_IMAGES", _boolean, True)
    settings["IMPORT_FETCH_PRIVATE"] = read("IMPORT_FETCH_PRIVATE", _boolean, False)
    settings["IMPORT_FETCH_TIMEOUT"] = read("IMPORT_FETCH_TIMEOUT", lambda v: _integer(v, 1, 60), 5)
    # The largest export an import takes (the admin's upload, the command's file): a big
    # WordPress site's is hundreds of megabytes, read in a stream.
    settings["IMPORT_MAX_BYTES"] = read(
        "IMPORT_MAX_BYTES", lambda v: _integer(v, MIB, 16 * 1024 * MIB), 512 * MIB
    )
    settings["MEDIA_PUBLIC_URL"] = read("MEDIA_PUBLIC_URL", _site_url, None)
    settings["S3_BUCKET"] = read("S3_BUCKET", _bucket, None)
    settings["S3_ENDPOINT_URL"] = read("S3_ENDPOINT_URL", _site_url, None)
    settings["S3_REGION"] = read("S3_REGION", str, None)
    settings["S3_ACCESS_KEY_ID"] = read("S3_ACCESS_KEY_ID", str, None)
    settings["S3_SECRET_ACCESS_KEY"] = read("S3_SECRET_ACCESS_KEY", str, None)
    if settings["S3_BUCKET"]:
        if not (settings["S3_REGION"] or settings["S3_ENDPOINT_URL"]):
            errors.append(
                "S3_REGION is not set; S3_BUCKET needs it (or S3_ENDPOINT_URL for a non-AWS store)"
            )
        if bool(settings["S3_ACCESS_KEY_ID"]) != bool(settings["S3_SECRET_ACCESS_KEY"]):
            errors.append("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together; set both")
    else:
        for name in ("S3_ENDPOINT_URL", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
            if source.get(name):
                errors.append(f"{name} is set but S3_BUCKET is not; set S3_BUCKET to use S3")


def _engine_options(url: str) -> dict[str, Any]:
    if is_postgresql(url):
        return {
            "pool_pre_ping": True,
            "pool_size": 5,
            "max_overflow": 5,
            # psycopg prepares a statement from its second run on a connection, so that
            # PostgreSQL can keep its plan: planning cost a read page more than running its
            # statement.  (A ROLLBACK drops every prepared statement: anonymous reads run
            # outside a transaction, see page_cache.read_outside_a_transaction.)
            "connect_args": {"prepare_threshold": 2},
        }
    # SQLite: wait for a writer instead of failing at once with "database is locked".
    return {"connect_args": {"timeout": 30}}


def celery_settings(
    broker: str, *, queue: str, beat_file: str, eager: bool, sweep_seconds: float = 30.0
) -> dict[str, Any]:
    """Celery settings for a job queue that must not lose work.

    Late acknowledgement with requeue on a lost worker process, one message
    prefetched at a time, publisher confirms on AMQP, JSON only (ids travel,
    not objects), no result backend: the database records what was done.
    """
    settings: dict[str, Any] = {
        "broker_url": broker,
        "task_default_queue": queue,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_soft_time_limit": 25,
        "task_time_limit": 30,
        "broker_connection_retry_on_startup": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        # The Procfile's worker turns SIGTERM into a cold shutdown (REMAP_SIGTERM=SIGQUIT) so
        # that the pool's children, which the platform signals too, keep running: the worker
        # then waits this long for running tasks, and hands back any still running (late acks)
        # well before the platform's kill 30 s after SIGTERM.
        "worker_soft_shutdown_timeout": 20.0,
        "worker_hijack_root_logger": False,
        # The app's log handler writes to sys.stderr; Celery must leave it a real stream.
        "worker_redirect_stdouts": False,
        "beat_schedule_filename": beat_file,
        "task_always_eager": eager,
        "timezone": "UTC",
        "beat_schedule": {
            "publish-due-posts": {"task": "broadsheet.publish_due_posts", "schedule": 60.0},
            # Re-enqueues newsletter work that is due and not moving (a lost message, a
            # killed worker, a broker that was down at publish time).
            "sweep-newsletter": {"task": "broadsheet.sweep_newsletter", "schedule": sweep_seconds},
            # Re-enqueues account and subscriber emails whose message was lost.
            "sweep-outbox": {"task": "broadsheet.sweep_outbox", "schedule": 60.0},
            # Removes for good the posts deleted to the trash more than 30 days ago.
            "empty-trash": {"task": "broadsheet.empty_trash", "schedule": 3600.0},
            # Re-enqueues uploads whose processing stalled (a killed worker, a lost message).
            "sweep-media": {"task": "broadsheet.sweep_media", "schedule": 60.0},
            # Removes uploads that no post uses, a day after they came.
            "collect-media-garbage": {
                "task": "broadsheet.collect_media_garbage",
                "schedule": 7 * 24 * 3600.0,
            },
            # Re-enqueues imports that stopped moving (a killed worker, a lost message).
            "sweep-imports": {"task": "broadsheet.sweep_imports", "schedule": 60.0},
            # Removes the import uploads nobody confirmed within a day.
            "expire-imports": {"task": "broadsheet.expire_imports", "schedule": 3600.0},
            # Sums the stats' minute rows into daily rows, forgets finished days' salts.
            "roll-up-stats": {"task": "broadsheet.roll_up_stats", "schedule": 300.0},
        },
    }
    scheme = broker.partition("://")[0]
    if scheme in ("amqp", "amqps", "pyamqp"):
        settings["broker_transport_options"] = {"confirm_publish": True}
    elif scheme.startswith("sqla"):
        # The SQLAlchemy transport hands its options to create_engine.
        settings["broker_transport_options"] = {"connect_args": {"timeout": 30}}
    return settings
