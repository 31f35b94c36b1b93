"""What a platform that reads a Procfile gets: the processes, their settings, the lock file."""

from __future__ import annotations

import gc
import json
import re
import runpy
import shlex
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from broadsheet.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    """Package name -> pinned version, from requirements.txt."""
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.strip()
    return pins


def _direct_pins() -> set[str]:
    """Names that requirements.txt says come straight from pyproject.toml."""
    direct: set[str] = set()
    current = ""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith(" "):
            current = canonicalize_name(line.split("==", 1)[0].split("[", 1)[0])
        elif "broadsheet (pyproject.toml)" in line and current:
            direct.add(current)
    return direct


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def _out_of_step_hint() -> str:
    return "requirements.txt is out of step with pyproject.toml; run `make lock`"


@pytest.mark.parametrize("dependency", PYPROJECT["project"]["dependencies"])
def test_every_dependency_is_pinned_in_the_lock_within_its_range(dependency: str) -> None:
    requirement = Requirement(dependency)
    pins = _pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement.name} is not pinned; {_out_of_step_hint()}"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"{requirement.name}=={pins[name]} is outside {requirement.specifier}; "
        f"{_out_of_step_hint()}"
    )
    # What an extra such as psycopg[binary] brings must be pinned too.
    for extra in requirement.extras:
        environment: dict[str, str] = {**default_environment(), "extra": extra}
        for brought in metadata.requires(requirement.name) or []:
            needed = Requirement(brought)
            if (
                needed.marker
                and "extra" in str(needed.marker)
                and needed.marker.evaluate(environment)
            ):
                assert canonicalize_name(needed.name) in pins, (
                    f"{needed.name} ({requirement.name}[{extra}]) is not pinned; "
                    f"{_out_of_step_hint()}"
                )


def test_the_lock_names_no_direct_dependency_that_pyproject_dropped() -> None:
    wanted = {canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]}
    assert sorted(_direct_pins() ^ wanted) == [], _out_of_step_hint()


def test_the_lock_installs_broadsheet_itself_last() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    # Not editable: the buildpack builds in one folder and runs from another.
    assert lines[-1] == "."


def test_the_python_version_is_one_that_the_project_supports() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    assert re.fullmatch(r"3\.\d+", version), version
    requires = PYPROJECT["project"]["requires-python"]
    assert Requirement(f"python{requires}").specifier.contains(f"{version}.0")


def test_the_procfile_runs_web_worker_one_beat_and_migrations_on_release() -> None:
    processes = _procfile()
    assert set(processes) == {"web", "worker", "beat", "release"}
    web = shlex.split(processes["web"])
    assert web[:3] == ["gunicorn", "--config", "gunicorn.conf.py"]
    assert web[-1] == "broadsheet:create_app()"
    worker = shlex.split(processes["worker"])
    # SIGTERM reaches every process of a dyno: the pool's children must ignore it and
    # let the main process finish or hand back their tasks (REMAP_SIGTERM does both).
    assert worker[0] == "REMAP_SIGTERM=SIGQUIT"
    assert worker[1:5] == ["celery", "--app", "broadsheet.worker", "worker"]
    assert worker[worker.index("--concurrency") + 1] == "${WORKER_CONCURRENCY:-2}"
    # The scheduler runs once, as beat, never inside a worker.
    assert "--beat" not in worker
    assert "-B" not in worker
    beat = shlex.split(processes["beat"])
    assert beat[:4] == ["celery", "--app", "broadsheet.worker", "beat"]
    assert beat[beat.index("--schedule") + 1].startswith("/tmp/")
    assert shlex.split(processes["release"]) == ["broadsheet", "db", "upgrade"]


def _gunicorn_settings(monkeypatch: pytest.MonkeyPatch, **environ: str) -> dict[str, Any]:
    for name in ("PORT", "WEB_CONCURRENCY", "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_gunicorn_listens_on_the_platforms_port_with_its_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _gunicorn_settings(monkeypatch, PORT="41234", WEB_CONCURRENCY="3")
    assert settings["bind"] == ["0.0.0.0:41234"]
    assert settings["workers"] == 3
    assert settings["accesslog"] is None  # the app logs each request itself
    assert settings["graceful_timeout"] < 30  # the platform kills 30 s after SIGTERM
    assert settings["wsgi_app"] == "broadsheet:create_app()"


def test_gunicorn_without_a_platform_listens_on_loopback_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _gunicorn_settings(monkeypatch)
    assert settings["bind"] == ["127.0.0.1:8000"]
    assert settings["forwarded_allow_ips"] == "127.0.0.1"


def test_a_gunicorn_worker_keeps_its_loaded_app_out_of_the_garbage_collectors_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full collection then reads only what requests left behind: not a 70 ms pause every
    few hundred requests (bench/search_bench.py)."""
    settings = _gunicorn_settings(monkeypatch)
    assert gc.get_freeze_count() == 0
    try:
        settings["post_worker_init"](None)
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(("name", "value"), [("PORT", "eighty"), ("WEB_CONCURRENCY", "0")])
def test_gunicorn_refuses_a_malformed_setting_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _gunicorn_settings(monkeypatch, **{name: value})
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"broadsheet: {name} is {value!r}; use a whole number from 1 to "
        f"{65535 if name == 'PORT' else 64}"
    ]


def test_app_json_asks_for_postgresql_rabbitmq_a_generated_secret_and_every_process() -> None:
    app = json.loads((ROOT / "app.json").read_text())
    plans = [addon["plan"].split(":")[0] for addon in app["addons"]]
    assert plans == ["heroku-postgresql", "cloudamqp"]
    assert app["env"]["SECRET_KEY"] == {**app["env"]["SECRET_KEY"], "generator": "secret"}
    assert app["env"]["BROADSHEET_ENV"]["value"] == "production"
    assert set(app["formation"]) == set(_procfile()) - {"release"}
    assert app["formation"]["beat"]["quantity"] == 1


def test_app_json_deploys_with_smtp_mail_that_production_accepts(tmp_path: Path) -> None:
    """The deploy button's settings, with the values it asks for, pass the production check."""
    env = json.loads((ROOT / "app.json").read_text())["env"]
    assert env["MAIL_BACKEND"]["value"] == "smtp"
    assert env["MAIL_SERVER"]["required"] is True
    environ = {name: spec["value"] for name, spec in env.items() if "value" in spec}
    environ |= {name: "given" for name, spec in env.items() if spec.get("required")}
    environ |= {
        "SECRET_KEY": "s" * 64,  # the generator's
        "SITE_URL": "https://blog.example.com",
        "DATABASE_URL": "postgres://u:p@db.example.com:5432/blog",  # the add-ons'
        "CLOUDAMQP_URL": "amqps://u:p@rabbit.example.com/vhost",
    }
    settings = load_settings(environ, tmp_path)
    assert settings["MAIL_BACKEND"] == "smtp"


def test_gunicorn_reads_request_lines_as_long_as_herokus_router_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from broadsheet.serving import REQUEST_LINE_LIMIT

    settings = _gunicorn_settings(monkeypatch)
    assert settings["limit_request_line"] == REQUEST_LINE_LIMIT == 8192 - len("\r\n")
    assert settings["worker_class"] == "broadsheet.serving.Worker"
