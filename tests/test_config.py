"""Settings: embedded defaults, the postgres:// rewrite, and one clear line per bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadsheet import create_app
from broadsheet.config import ConfigError, database_url, load_settings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgres://u:p@db.example.com:5432/blog",
            "postgresql+psycopg://u:p@db.example.com:5432/blog",
        ),
        ("postgresql://u@localhost/blog", "postgresql+psycopg://u@localhost/blog"),
        ("postgresql+psycopg://u@localhost/blog", "postgresql+psycopg://u@localhost/blog"),
        ("sqlite:////var/lib/blog.db", "sqlite:////var/lib/blog.db"),
    ],
)
def test_database_urls_are_rewritten_for_psycopg_3(given: str, expected: str) -> None:
    assert database_url(given) == expected


def test_embedded_defaults_keep_everything_under_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings({}, tmp_path)
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'broadsheet.db'}"
    assert settings["CELERY"]["broker_url"] == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert settings["MAIL_BACKEND"] == "file"
    assert settings["MAIL_FILE_PATH"] == str(tmp_path / "mail")
    assert settings["PRODUCTION"] is False


def test_a_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({}, tmp_path)["SECRET_KEY"]
    second = load_settings({}, tmp_path)["SECRET_KEY"]
    assert first == second
    assert len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BROADSHEET_ENV": "production"}, "SECRET_KEY is not set; production"),
        ({"FLASK_ENV": "production"}, "SECRET_KEY is not set"),
        ({"DATABASE_URL": "postgres://u@h/db"}, "SECRET_KEY is not set"),
        ({"BROADSHEET_ENV": "production", "SECRET_KEY": "k" * 32}, "DATABASE_URL is not set"),
        ({"BROADSHEET_ENV": "production", "SECRET_KEY": "k" * 32}, "SITE_URL is not set"),
        ({"BROADSHEET_ENV": "production", "SECRET_KEY": "k" * 32}, "CELERY_BROKER_URL"),
        ({"DATABASE_URL": "postgres://u@h/db", "SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL uses mysql://"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a URL"),
        ({"DATABASE_URL": "postgres://u@h"}, "DATABASE_URL names no database"),
        ({"MAIL_PORT": "twenty-five"}, "MAIL_PORT is 'twenty-five', not a whole number"),
        ({"MAIL_PORT": "70000"}, "MAIL_PORT is 70000"),
        ({"MAIL_USE_TLS": "sometimes"}, "MAIL_USE_TLS is 'sometimes'; use true or false"),
        ({"MAIL_USE_TLS": "true", "MAIL_USE_SSL": "1"}, "choose one"),
        ({"MAIL_BACKEND": "carrier-pigeon"}, "MAIL_BACKEND is 'carrier-pigeon'"),
        ({"SITE_URL": "blog.example.com"}, "SITE_URL is 'blog.example.com'"),
        ({"CELERY_BROKER_URL": "kafka://h"}, "CELERY_BROKER_URL uses kafka://"),
        ({"CELERY_TASK_ALWAYS_EAGER": "nope"}, "CELERY_TASK_ALWAYS_EAGER is 'nope'; use true"),
        ({"SITEMAP_MAX_URLS": "lots"}, "SITEMAP_MAX_URLS is 'lots', not a whole number"),
        ({"SITEMAP_MAX_URLS": "60000"}, "SITEMAP_MAX_URLS is 60000; it must be between 1 and"),
        ({"IMPORT_MAX_BYTES": "500MB"}, "IMPORT_MAX_BYTES is '500MB', not a whole number"),
        ({"IMPORT_MAX_BYTES": "1000"}, "IMPORT_MAX_BYTES is 1000; it must be between 1048576"),
        ({"SITE_TIMEZONE": "Mars/Olympus"}, "SITE_TIMEZONE is 'Mars/Olympus'; use an IANA"),
        ({"SITE_LANGUAGE": "klingon"}, "SITE_LANGUAGE is 'klingon'; use one of simple, "),
    ],
)
def test_a_bad_or_missing_setting_is_named_in_one_line(
    tmp_path: Path, environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ, tmp_path)
    lines = str(caught.value).splitlines()
    assert any(message in line for line in lines), lines


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"BROADSHEET_ENV": "production", "MAIL_PORT": "x"}, tmp_path)
    # SECRET_KEY, DATABASE_URL, SITE_URL, the broker, MAIL_PORT, and MAIL_SERVER for smtp.
    assert len(str(caught.value).splitlines()) == 6


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "off"])
def test_false_means_false(tmp_path: Path, word: str) -> None:
    settings = load_settings(
        {"MAIL_USE_TLS": word, "MAIL_USE_SSL": word, "CELERY_TASK_ALWAYS_EAGER": word}, tmp_path
    )
    assert settings["MAIL_USE_TLS"] is False
    assert settings["MAIL_USE_SSL"] is False
    assert settings["CELERY"]["task_always_eager"] is False


def test_true_means_true(tmp_path: Path) -> None:
    settings = load_settings({"CELERY_TASK_ALWAYS_EAGER": "true"}, tmp_path)
    assert settings["CELERY"]["task_always_eager"] is True


def test_sitemap_size_and_time_zone_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        {"SITEMAP_MAX_URLS": "1000", "SITE_TIMEZONE": "Europe/Paris"}, tmp_path
    )
    assert settings["SITEMAP_MAX_URLS"] == 1000
    assert settings["SITE_TIMEZONE"] == "Europe/Paris"


PRODUCTION = {
    "BROADSHEET_ENV": "production",
    "SECRET_KEY": "k" * 32,
    "DATABASE_URL": "postgres://u@db.internal/blog",
    "SITE_URL": "https://blog.example.com",
    "CELERY_BROKER_URL": "amqp://u:p@rabbit.internal//",
    "MAIL_SERVER": "smtp.example.com",
}


@pytest.mark.parametrize("backend", ["console", "file"])
@pytest.mark.parametrize(
    "environ",
    [PRODUCTION, {"DATABASE_URL": "postgres://u@db.internal/blog", "SECRET_KEY": "k" * 32}],
    ids=["BROADSHEET_ENV", "postgres-url"],
)
def test_production_refuses_mail_that_writes_links_where_others_read_them(
    tmp_path: Path, environ: dict[str, str], backend: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**environ, "MAIL_BACKEND": backend}, tmp_path)
    (line,) = str(caught.value).splitlines()
    assert line.startswith(f"MAIL_BACKEND is {backend!r}, which writes reset and unsubscribe")
    assert "needs smtp" in line


def test_production_sends_mail_through_smtp_unless_told(tmp_path: Path) -> None:
    assert load_settings(PRODUCTION, tmp_path)["MAIL_BACKEND"] == "smtp"


def test_cloudamqp_url_is_the_broker_when_celery_broker_url_is_unset(tmp_path: Path) -> None:
    settings = load_settings({"CLOUDAMQP_URL": "amqps://u:p@rabbit.example.com/vhost"}, tmp_path)
    assert settings["CELERY"]["broker_url"] == "amqps://u:p@rabbit.example.com/vhost"


def test_the_queue_is_set_up_not_to_lose_work(tmp_path: Path) -> None:
    amqp = load_settings({"CELERY_BROKER_URL": "amqp://guest@127.0.0.1//"}, tmp_path)["CELERY"]
    assert amqp["task_acks_late"] is True
    assert amqp["task_reject_on_worker_lost"] is True
    assert amqp["worker_prefetch_multiplier"] == 1
    assert amqp["broker_transport_options"] == {"confirm_publish": True}
    assert amqp["accept_content"] == ["json"]
    embedded = load_settings({}, tmp_path)["CELERY"]
    # The SQLAlchemy transport passes its options to create_engine: no AMQP option there.
    assert "confirm_publish" not in embedded.get("broker_transport_options", {})


def test_a_production_app_starts_with_its_settings(tmp_path: Path) -> None:
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "BROADSHEET_ENV": "production",
            "SECRET_KEY": "a-production-secret-of-some-length",
            "DATABASE_URL": "postgres://user@db.internal:5432/blog",
            "SITE_URL": "https://blog.example.com/",
            "CELERY_BROKER_URL": "amqp://u:p@rabbit.internal//",
            "MAIL_SERVER": "smtp.internal",
        }
    )
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert app.config["SITE_URL"] == "https://blog.example.com"
    assert app.extensions["celery"].conf.task_acks_late is True


def test_behind_one_proxy_the_visitors_own_address_is_used(tmp_path: Path) -> None:
    app = create_app({"INSTANCE_PATH": str(tmp_path), "PROXY_HOPS": "1", "SECRET_KEY": "k" * 32})

    @app.get("/whoami")
    def whoami() -> str:
        from flask import request

        return f"{request.remote_addr} {request.scheme}"

    answer = app.test_client().get(
        "/whoami",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert answer.get_data(as_text=True) == "203.0.113.9 https"
    direct = create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "k" * 32}).test_client()
    assert direct.application.config["PROXY_HOPS"] == 0
