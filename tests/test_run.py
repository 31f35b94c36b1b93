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

        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole group
        process.wait(timeout=30)
        assert wait_until(lambda: _get(f"http://127.0.0.1:{port}/")[0] == 0, timeout=10)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    # Nothing of the group is left running: the worker went with the web process.
    def group_gone() -> bool:
        found = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, check=False)
        return found.returncode == 1

    assert wait_until(group_gone, timeout=20), "".join(lines)
