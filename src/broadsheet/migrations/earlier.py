"""What a migration's way down needs of an earlier revision: its module, read by file name
(revision files are not importable by name: they start with a date), so that a function an
upgrade replaces is put back from the revision that wrote it, not from a copy."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).resolve().parent / "versions"


def revision_module(filename: str) -> ModuleType:
    """The module of the revision file ``filename`` in ``versions/``."""
    path = VERSIONS / filename
    spec = importlib.util.spec_from_file_location(f"broadsheet_revision_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot read the revision {filename}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def or_replace(create_function: str) -> str:
    """A ``CREATE FUNCTION`` statement as ``CREATE OR REPLACE FUNCTION``, to put it back over
    a later version of the function."""
    replaced = create_function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if replaced == create_function and "CREATE OR REPLACE FUNCTION" not in create_function:
        raise ValueError("not a CREATE FUNCTION statement")
    return replaced
