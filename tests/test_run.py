"""`broadsheet run` (what `make run` starts): a fresh instance serves demo posts, with a worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.workers import wait_until


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except OSError:
        return 0, ""


def test_run_serves_demo_posts_with_a_worker_beside_it_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")
    }
    env["BROADSHEET_INSTANCE"] = str(tmp_path / "instance")
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from broadsheet.cli import main; main()",
            "run",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    workers: list[int] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        home: dict[str, str] = {}

        def serving() -> bool:
            status, body = _get(f"http://127.0.0.1:{port}/")
            home["body"] = body
            return status == 200

        started = time.monotonic()
        assert wait_until(serving, timeout=60), "".join(lines)
        assert time.monotonic() - started < 60
        assert "<article" in home["body"]
        # The worker beside the web process is up and consuming from the embedded broker.
        assert wait_until(lambda: any(" ready." in line for line in lines), timeout=30), "".join(
            lines
        )
        assert (tmp_path / "instance" / "broadsheet.db").exists()
        assert (tmp_path / "instance" / "broker.db").exists()

        # A worker that dies is started again.
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) == 1, children
        workers.append(int(children[0]))
        os.kill(workers[0], signal.SIGKILL)
        assert wait_until(lambda: sum(" ready." in line for line in lines) >= 2, timeout=30), (
            "".join(lines)
        )
        assert any("starting it again" in line for line in lines)
        workers += [int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()]  # fmt: skip

        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole group
        process.wait(timeout=30)
        assert wait_until(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 0, timeout=10)
        # Nothing is left running: the worker went with the web process.
        assert wait_until(lambda: not any(_alive(pid) for pid in workers), timeout=20), "".join(
            lines
        )
    finally:
        _stop_all(process, workers, reader)


def _stop_all(process: subprocess.Popen[str], workers: list[int], reader: threading.Thread) -> None:
    """Whatever the test left running, the runner and its workers' sessions, is killed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    for pid in workers:
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    reader.join(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def _alive(session: int) -> bool:
    """Whether anything of the worker's session (the worker, its pool, its beat) still runs."""
    found = subprocess.run(["pgrep", "-s", str(session)], capture_output=True, check=False)
    return found.returncode == 0


def test_the_worker_ends_when_the_runner_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the runner no chance to stop its worker: the worker must go anyway."""
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY")
    }
    env["BROADSHEET_INSTANCE"] = str(tmp_path / "instance")
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-c", "from broadsheet.cli import main; main()", "run", "--port",
         str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    workers: list[int] = []
    try:
        assert wait_until(lambda: any(" ready." in line for line in lines), timeout=90), "".join(
            lines
        )
        workers += [int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()]  # fmt: skip
        assert len(workers) == 1, workers
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        killed = time.monotonic()
        assert wait_until(lambda: not _alive(workers[0]), timeout=20), "".join(lines)
        gone_after = time.monotonic() - killed
        print(f"worker session gone {gone_after:.1f} s after the runner's SIGKILL")
        assert gone_after < 15
    finally:
        _stop_all(process, workers, reader)
