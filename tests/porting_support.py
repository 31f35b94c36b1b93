"""Helpers for the import and export tests: the fixtures' folder, and an import run as the
command line runs one (summary, then the job, committing after each batch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from broadsheet.accounts.permissions import OPERATOR, Actor
from broadsheet.extensions import db
from broadsheet.porting import services as porting
from broadsheet.porting.models import ImportJob
from tests.conftest import NOW

FIXTURES = Path(__file__).parent / "fixtures" / "porting"
# WordPress's own theme unit test export, beside the repository (never copied into it).
REFERENCE_WXR = Path(__file__).parents[2] / "shared" / "data" / "wp-themeunittestdata.xml"


def start(path: Path, folder: Path, actor: Actor = OPERATOR, **options: Any) -> ImportJob:
    with path.open("rb") as upload:
        job = porting.start_import(db.session, actor=actor, now=NOW, upload=upload,
                                   filename=path.name, folder=folder, **options)  # fmt: skip
    db.session.commit()
    return job


def import_file(path: Path, folder: Path, actor: Actor = OPERATOR) -> ImportJob:
    job = start(path, folder, actor)
    for _done in porting.run_import(db.session, job, actor=actor, now=NOW):
        db.session.commit()
    return job
