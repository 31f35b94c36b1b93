"""The pipeline: lint, then the tests on real services, then a deploy that only main reaches."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import services

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    """The tool installed beside this Python (by `make test`), else on PATH; never a skip."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; `make test` installs it", pytrace=False)
    return str(found)


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("actionlint"), "-no-color", "-shellcheck", _tool("shellcheck"), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_passes_actionlint() -> None:
    result = actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_checks_a_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "ci.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("needs: test", "needs: tests", 1)
        + "\n  typo:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $UNQUOTED\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert 'needs job "tests" which does not exist' in result.stdout
    assert "SC2086" in result.stdout  # shellcheck ran on the run: steps


def test_tests_run_after_lint_and_deploy_only_after_tests_on_a_push_to_main() -> None:
    jobs = workflow()["jobs"]
    assert jobs["test"]["needs"] == "lint"
    assert jobs["deploy"]["needs"] == "test"
    assert jobs["deploy"]["if"] == "github.ref == 'refs/heads/main' && github.event_name == 'push'"
    deploy_script = "\n".join(step.get("run", "") for step in jobs["deploy"]["steps"])
    for secret in ("HEROKU_API_KEY", "HEROKU_APP_NAME", "HEROKU_EMAIL"):
        assert f"secrets.{secret}" in str(jobs["deploy"]["steps"])
        assert secret in deploy_script
    # Only first-party actions, which GitHub maintains.
    uses = [s["uses"] for job in jobs.values() for s in job["steps"] if "uses" in s]
    assert all(u.startswith("actions/") for u in uses), uses


def test_the_tests_get_postgresql_and_rabbitmq_with_health_checks_and_require_them() -> None:
    test = workflow()["jobs"]["test"]
    assert set(test["services"]) == {"postgres", "rabbitmq"}
    for service in test["services"].values():
        assert "--health-cmd" in service["options"]
    env = test["env"]
    assert env["BROADSHEET_REQUIRE_SERVICES"] == "1"
    # The names tests/services.py reads, pointing at the service containers.
    reads = Path(services.__file__).read_text()
    for name in ("BROADSHEET_REQUIRE_SERVICES", "BROADSHEET_TEST_POSTGRES", "BROADSHEET_TEST_AMQP"):
        assert f'"{name}"' in reads
    assert "@postgres:5432/" in env["BROADSHEET_TEST_POSTGRES"]
    assert "@rabbitmq:5672/" in env["BROADSHEET_TEST_AMQP"]
    run = "\n".join(step.get("run", "") for step in test["steps"])
    assert "make test" in run
    assert "chromium" in run
