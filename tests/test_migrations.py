"""The migrations are the schema's source of truth: they must agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask, current_app
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect

from broadsheet.extensions import db


def _differences() -> list[object]:
    # The app's own filter: what the search migration keeps beside the models is left out.
    include_name = current_app.extensions["migrate"].configure_args["include_name"]
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": include_name}
        )
        return list(compare_metadata(context, db.metadata))


def test_models_and_migrations_agree(app: Flask) -> None:
    assert _differences() == []


def test_migrations_go_down_and_up_again(app: Flask) -> None:
    directory = app.extensions["migrate"].directory
    downgrade(directory=directory, revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade(directory=directory)
    assert {"posts", "tags", "post_tags", "users"} <= set(inspect(db.engine).get_table_names())
    assert _differences() == []


def test_archive_indexes_exist(app: Flask) -> None:
    inspector = inspect(db.engine)
    post_tags = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("post_tags")}
    assert post_tags["ix_post_tags_archive"] == ["tag_id", "published_at", "post_id"]
    posts = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("posts")}
    assert posts["ix_posts_listing"] == ["kind", "status", "published_at", "id"]
