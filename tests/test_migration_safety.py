"""Migrations run in the release phase while the previous release still serves.

So an upgrade only expands the schema: it adds tables, nullable columns (or
columns with a server default) and indexes.  Dropping or renaming what the
running release reads, or making a column required that it does not write,
waits for a later release, and is marked there with a ``# contract:`` comment
on the operation's line or the line above it, saying which release stopped
using what is removed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

VERSIONS = Path(__file__).resolve().parent.parent / "src" / "broadsheet" / "migrations" / "versions"
CONTRACT_MARK = "# contract:"
ALWAYS_UNSAFE = {
    "drop_table": "drops a table",
    "drop_column": "drops a column",
    "rename_table": "renames a table",
}
RISKY_SQL = re.compile(r"\b(DROP\s+(TABLE|COLUMN)|RENAME|SET\s+NOT\s+NULL)\b", re.IGNORECASE)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _required_without_default(call: ast.Call) -> bool:
    """A column (or column change) that is NOT NULL and gives the old release no default."""
    return _is_false(_keyword(call, "nullable")) and _keyword(call, "server_default") is None


def _problem(call: ast.Call) -> str | None:
    if not isinstance(call.func, ast.Attribute):
        return None
    operation = call.func.attr
    if operation in ALWAYS_UNSAFE:
        return ALWAYS_UNSAFE[operation]
    if operation == "alter_column":
        if _keyword(call, "new_column_name") is not None:
            return "renames a column"
        if _required_without_default(call):
            return "makes a column NOT NULL without a server_default"
    if operation == "add_column":
        column = next((a for a in call.args if isinstance(a, ast.Call)), None)
        if column is not None and _required_without_default(column):
            return "adds a NOT NULL column without a server_default"
    if operation == "execute" and call.args:
        sql = call.args[0]
        if isinstance(sql, ast.Constant) and RISKY_SQL.search(str(sql.value)):
            return "runs SQL that drops, renames or requires something"
    return None


def contract_steps_unmarked(source: str) -> list[str]:
    """Each operation in ``upgrade()`` that the running release could trip over, unmarked."""
    tree = ast.parse(source)
    lines = source.splitlines()
    upgrade = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None
    )
    if upgrade is None:
        return []
    found: list[str] = []
    for node in ast.walk(upgrade):
        if isinstance(node, ast.Call) and (problem := _problem(node)):
            nearby = lines[max(node.lineno - 2, 0) : node.lineno]
            if not any(CONTRACT_MARK in line for line in nearby):
                found.append(f"line {node.lineno}: {problem}")
    return found


SAFE = """
def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer(), nullable=False))
    op.add_column("posts", sa.Column("subtitle", sa.String(), nullable=True))
    op.add_column("posts", sa.Column("views", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("posts") as batch_op:
        batch_op.create_index("ix_posts_views", ["views"])
        batch_op.alter_column("title", nullable=False, server_default="")
def downgrade():
    op.drop_column("posts", "subtitle")
    op.drop_table("notes")
"""

MARKED = """
def upgrade():
    # contract: 0.3 stopped reading posts.legacy_html
    op.drop_column("posts", "legacy_html")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("nickname")  # contract: unused since 0.2
"""


@pytest.mark.parametrize(
    ("operation", "problem"),
    [
        ('op.drop_table("notes")', "drops a table"),
        ('op.drop_column("posts", "subtitle")', "drops a column"),
        ('op.rename_table("posts", "articles")', "renames a table"),
        ('op.alter_column("posts", "title", new_column_name="headline")', "renames a column"),
        ('op.alter_column("posts", "title", nullable=False)', "makes a column NOT NULL"),
        ('op.add_column("posts", sa.Column("n", sa.Integer(), nullable=False))', "adds a NOT NULL"),
        ('op.execute("ALTER TABLE posts DROP COLUMN subtitle")', "runs SQL"),
        ('batch_op.drop_column("subtitle")', "drops a column"),
    ],
)
def test_an_unmarked_contract_step_is_caught(operation: str, problem: str) -> None:
    (found,) = contract_steps_unmarked(f"def upgrade():\n    {operation}\n")
    assert found.startswith("line 2: ")
    assert problem in found


def test_additive_steps_and_marked_contract_steps_pass() -> None:
    assert contract_steps_unmarked(SAFE) == []
    assert contract_steps_unmarked(MARKED) == []


@pytest.mark.parametrize("migration", sorted(VERSIONS.glob("*.py")), ids=lambda p: p.stem)
def test_every_migration_can_run_while_the_previous_release_serves(migration: Path) -> None:
    assert contract_steps_unmarked(migration.read_text()) == []
