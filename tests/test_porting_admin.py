"""The admin's import (upload, summary, confirm, progress, report) and export download."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from broadsheet.accounts.models import Role
from broadsheet.content.models import Post
from broadsheet.extensions import db, utcnow
from broadsheet.porting import tasks
from broadsheet.porting.models import ImportJob, JobStatus
from tests.porting_support import FIXTURES
from tests.staff import PASSWORD, csrf_token, post_form, separate_client, sign_in


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return separate_client(app)


@pytest.fixture
def admin(client: FlaskClient, make_user: Any) -> FlaskClient:
    """The client, signed in as an admin (who may import and export)."""
    user = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(client, user.email)
    return client


def _upload(client: FlaskClient, name: str, content: bytes) -> Any:
    page = client.get("/admin/import/")
    # Encoded here, in memory: the test client would spool a large body to a file it never
    # closes.
    boundary, body = encode_multipart(
        {"csrf_token": csrf_token(page.text), "file": FileStorage(io.BytesIO(content), name)}
    )
    return client.post(
        "/admin/import/", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_an_admin_uploads_reads_the_summary_confirms_and_gets_the_report(
    client: FlaskClient, make_user: Any, make_post: Any
) -> None:
    make_post("Taken", slug="taken")
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    sign_in(client, admin.email)
    uploaded = _upload(client, "wordpress.xml", (FIXTURES / "wordpress.xml").read_bytes())
    assert uploaded.status_code == 302
    job_url = uploaded.headers["Location"]
    summary = client.get(job_url)
    assert "4 posts" in summary.text
    assert "taken → taken-2" in summary.text  # the clash, and how it is resolved
    assert "will be skipped" in summary.text
    assert db.session.scalar(select(func.count()).select_from(Post)) == 1  # nothing yet

    job = db.session.scalars(select(ImportJob)).one()
    confirmed = post_form(client, f"/admin/import/{job.id}/confirm", {}, form_at=job_url)
    assert confirmed.status_code == 302
    assert client.get(f"/admin/import/{job.id}/progress").json["status"] == "queued"
    db.session.expire_all()
    assert tasks.run_import(job.id) == "done"  # what the worker does with the queued task
    progress = client.get(f"/admin/import/{job.id}/progress").json
    assert progress["status"] == "done"
    assert progress["percent"] == 100
    done = client.get(job_url)
    assert "Created: 1 authors, 1 pages, 4 posts" in done.text
    report = client.get(f"/admin/import/{job.id}/report.txt")
    assert report.headers["Content-Disposition"].startswith("attachment")
    assert "Redirects from old addresses" in report.text
    assert db.session.scalar(select(func.count()).select_from(Post)) == 6


def test_a_bad_upload_is_refused_on_the_form(admin: FlaskClient) -> None:
    refused = _upload(admin, "notes.txt", b"nothing to see")
    assert refused.status_code == 422
    assert "is not a WordPress export" in refused.text
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_the_admin_export_is_one_archive_with_everything(
    client: FlaskClient, make_user: Any, make_post: Any
) -> None:
    admin = make_user(Role.ADMIN, email="admin@example.com", password=PASSWORD)
    make_post("Exported", tags=["Flask"])
    sign_in(client, admin.email)
    response = client.get("/admin/export.zip")
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    response.close()
    data = json.loads(archive.read("broadsheet.json"))
    assert [p["slug"] for p in data["posts"]] == ["exported"]
    assert set(data) >= {"settings", "authors", "tags", "posts", "redirects", "subscribers"}
    assert archive.read("posts/exported.md").decode().startswith('---\ntitle: "Exported"')


def test_editors_can_neither_import_nor_export(client: FlaskClient, make_user: Any) -> None:
    editor = make_user(Role.EDITOR, email="ed@example.com", password=PASSWORD)
    sign_in(client, editor.email)
    assert client.get("/admin/import/").status_code == 403
    assert client.get("/admin/export.zip").status_code == 403


def _padded_export(size: int) -> bytes:
    """The WordPress fixture grown to ``size`` bytes by comments at its end (still valid)."""
    export = (FIXTURES / "wordpress.xml").read_bytes()
    comment = b"<!-- " + b"x" * 65_000 + b" -->\n"
    return export + comment * (max(size - len(export), 0) // len(comment) + 1)


def test_an_export_larger_than_any_form_is_taken_up_to_import_max_bytes(
    admin: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = admin
    large = app.config["MAX_CONTENT_LENGTH"] + 1024 * 1024  # more than any other form takes
    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", large + 1024 * 1024)
    uploaded = _upload(client, "wordpress.xml", _padded_export(large))
    assert uploaded.status_code == 302
    assert "4 posts" in client.get(uploaded.headers["Location"]).text

    monkeypatch.setitem(app.config, "IMPORT_MAX_BYTES", 1024 * 1024)
    refused = _upload(client, "wordpress.xml", _padded_export(2 * 1024 * 1024))
    assert refused.status_code == 413
    assert "larger than the 1 MB an import takes" in refused.text
    assert "IMPORT_MAX_BYTES" in refused.text
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 1


def test_an_upload_nobody_confirms_is_removed_after_a_day(admin: FlaskClient, app: Flask) -> None:
    client = admin
    export = (FIXTURES / "wordpress.xml").read_bytes()
    for _ in range(2):
        assert _upload(client, "wordpress.xml", export).status_code == 302
    old, recent = db.session.scalars(select(ImportJob).order_by(ImportJob.id)).all()
    old.created_at = utcnow() - timedelta(days=1, minutes=1)
    db.session.commit()
    old_path, recent_path = Path(old.path), Path(recent.path)
    assert old_path.exists()
    beat = app.config["CELERY"]["beat_schedule"]["expire-imports"]
    assert beat == {"task": "broadsheet.expire_imports", "schedule": 3600.0}
    expire = app.extensions["celery"].tasks[beat["task"]]  # what the beat runs, hourly

    assert expire() == 1
    assert not old_path.exists()
    assert recent_path.exists()  # less than a day old: still waiting for its confirm
    db.session.expire_all()
    assert (old.status, recent.status) == (JobStatus.FAILED, JobStatus.WAITING)
    assert "Upload it again" in client.get(f"/admin/import/{old.id}/").text
    # A confirm from a page left open queues nothing.
    job_url = f"/admin/import/{old.id}/"
    post_form(client, f"/admin/import/{old.id}/confirm", {}, form_at=job_url)
    db.session.expire_all()
    assert old.status is JobStatus.FAILED
    assert expire() == 0
