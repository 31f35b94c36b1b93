"""Run a command that ends when the process that started it ends, however that one dies.

``python .../broadsheet/lifeline.py PARENT_PID COMMAND...`` is how
``broadsheet run`` starts its worker (standard library only, so it starts at
once).  On Linux it asks the kernel to send SIGTERM when the parent dies
(``prctl(PR_SET_PDEATHSIG)``, kept across ``exec``) and then becomes the
command, so no extra process stays.  Elsewhere it stays as a small watcher:
it starts the command, checks once a second whether its own parent is still
there, and if not ends the command with SIGTERM (SIGKILL ten seconds later).
A ``preexec_fn`` could make the same request, but it is unsafe in a process
with threads, as the runner is.  Linux sends the signal when the *thread* that
started the child ends, so the runner starts its worker only from threads that
live as long as it does (its main thread, and the thread that restarts a worker).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
GRACE_SECONDS = 10.0


def _watch(parent: int, command: list[str]) -> int:
    child = subprocess.Popen(command)
    # A stop meant for the worker (the runner signals the whole session) passes to it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: child.send_signal(number))
    while child.poll() is None:
        if os.getppid() != parent:
            child.terminate()
            try:
                child.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=1.0)
    return child.wait()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: lifeline.py PARENT_PID COMMAND...", file=sys.stderr)
        return 2
    parent, command = int(argv[0]), argv[1:]
    if not sys.platform.startswith("linux"):
        return _watch(parent, command)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return _watch(parent, command)
    if os.getppid() != parent:  # the parent died before the request was made
        return 1
    os.execv(command[0], command)  # noqa: S606 (the runner's own worker command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
