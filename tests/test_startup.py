"""Start-up as an operator sees it: the real `broadsheet`, gunicorn and Celery processes.

A missing production setting stops each of them with one line naming it and
no traceback; a healthy web process logs JSON and stops cleanly on SIGTERM;
a worker survives the platform's SIGTERM to every process of the dyno.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """This process's environment (already free of Broadsheet settings) plus ``settings``."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "BROADSHEET_INSTANCE": str(tmp_path / "instance"),
        **settings,
    }


def production(tmp_path: Path) -> dict[str, str]:
    """Every production setting, pointing at services that are not there."""
    port = closed_port()
    return {
        "BROADSHEET_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/gone",
        "SITE_URL": "https://blog.example.com",
        "CELERY_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{port}//",
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
    }


def broadsheet(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "broadsheet"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


MISSING = [
    ("SECRET_KEY", {}, "SECRET_KEY is not set; production"),
    ("DATABASE_URL", {}, "DATABASE_URL is not set; production needs it"),
    ("SITE_URL", {}, "SITE_URL is not set; production needs it"),
    ("CELERY_BROKER_URL", {}, "CELERY_BROKER_URL (or CLOUDAMQP_URL) is not set"),
    ("MAIL_SERVER", {"MAIL_BACKEND": "smtp"}, "MAIL_SERVER is not set; MAIL_BACKEND=smtp needs it"),
]


@pytest.mark.parametrize(("missing", "extra", "line"), MISSING, ids=[m[0] for m in MISSING])
def test_broadsheet_stops_with_one_line_naming_a_missing_production_setting(
    tmp_path: Path, missing: str, extra: dict[str, str], line: str
) -> None:
    settings = {**production(tmp_path), **extra}
    settings.pop(missing, None)
    result = broadsheet(tmp_path, environment(tmp_path, **settings), "db", "current")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (only,) = result.stderr.strip().splitlines()
    assert only.startswith(f"broadsheet: {line}"), only


def test_broadsheet_accepts_herokus_postgres_url_and_cloudamqp_url(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = production(tmp_path)
    settings["DATABASE_URL"] = postgres_url.replace("postgresql://", "postgres://", 1)
    settings["CLOUDAMQP_URL"] = settings.pop("CELERY_BROKER_URL")
    result = broadsheet(tmp_path, environment(tmp_path, **settings), "db", "current")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running at the end are killed with their children."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def gunicorn(
    tmp_path: Path, env: dict[str, str], port: int, started: list[subprocess.Popen[bytes]]
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # The command line's --bind wins over PORT: tests listen on loopback only.
            [str(BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"127.0.0.1:{port}", "broadsheet:create_app()"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    started.append(process)
    return process, log


def test_gunicorn_stops_before_serving_when_the_secret_key_is_missing(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    settings = production(tmp_path)
    del settings["SECRET_KEY"]
    port = closed_port()
    process, log = gunicorn(tmp_path, environment(tmp_path, **settings), port, started)
    assert process.wait(timeout=30) == 2
    output = log.read_text()
    assert "Traceback" not in output
    assert [line for line in output.splitlines() if line.startswith("broadsheet:")] == [
        line for line in output.splitlines() if "SECRET_KEY is not set; production" in line
    ]
    assert "broadsheet: SECRET_KEY is not set; production" in output
    assert "Booting worker" not in output


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, dict(response.headers), response.read()


def serving_on_sqlite(
    tmp_path: Path, started: list[subprocess.Popen[bytes]], headers: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Path, int, tuple[int, dict[str, str], bytes]]:
    """Production gunicorn on a fresh SQLite file, and its first /healthz answer."""
    database = tmp_path / "site.db"
    sqlite3.connect(database).close()
    settings = {
        **production(tmp_path),
        "DATABASE_URL": f"sqlite:///{database}",
        "CELERY_BROKER_URL": "memory://",
        "WEB_CONCURRENCY": "1",
    }
    port = closed_port()
    process, log = gunicorn(tmp_path, environment(tmp_path, **settings), port, started)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            return process, log, port, get(f"http://127.0.0.1:{port}/healthz", headers)
        except OSError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)


def test_gunicorn_serves_logs_one_json_line_per_request_and_stops_on_sigterm(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    process, log, _port, (status, headers, _) = serving_on_sqlite(
        tmp_path, started, {"X-Request-ID": "from-the-router"}
    )
    assert status == 200
    assert headers["X-Request-ID"] == "from-the-router"

    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert time.monotonic() - stopping < 25

    about_healthz = [line for line in log.read_text().splitlines() if "/healthz" in line]
    (line,) = about_healthz  # ours, and no access log line from gunicorn
    entry = json.loads(line)
    assert entry["request_id"] == "from-the-router"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/healthz", 200)


def raw_get(port: int, target: str) -> tuple[int, str, bytes]:
    """GET ``target`` over a plain socket (urllib would refuse nothing, but hides the raw line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    content_type = next(
        (
            line.split(":", 1)[1].strip()
            for line in header_lines
            if line.lower().startswith("content-type:")
        ),
        "",
    )
    return int(status_line.split()[1]), content_type, body


def test_gunicorn_takes_request_lines_as_long_as_the_router_allows_and_refuses_longer_cleanly(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    process, _log, port, _first = serving_on_sqlite(tmp_path, started, {})
    # Heroku's router passes request lines of up to 8,192 bytes, CRLF included.
    fixed = len("GET /healthz?q= HTTP/1.1\r\n")
    longest = f"/healthz?q={'x' * (8192 - fixed)}"
    status, _, _ = raw_get(port, longest)
    assert status == 200
    status, content_type, body = raw_get(port, longest + "x")
    assert status == 414
    assert content_type == "application/problem+json"
    assert json.loads(body)["status"] == 414
    assert b"xxxx" not in body
    assert process.poll() is None


def procfile_command(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}: "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no {name} in the Procfile")


@pytest.mark.queue
def test_a_worker_stops_cleanly_when_every_process_of_the_dyno_gets_sigterm(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "worker.log"
    env = environment(tmp_path, WORKER_CONCURRENCY="2")
    # As the platform does: the Procfile line through bash, then SIGTERM to the whole group.
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", "-c", procfile_command("worker")],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    started.append(process)
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)

    stopping = time.monotonic()
    os.killpg(process.pid, signal.SIGTERM)
    assert process.wait(timeout=30) == 0, log.read_text()
    assert time.monotonic() - stopping < 25
    output = log.read_text()
    # The pool's children ignored the signal and were shut down by the main process.
    assert "exited with 'signal 15" not in output, output
    assert "concurrency: 2" in output
