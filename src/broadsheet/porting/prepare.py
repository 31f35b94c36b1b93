"""Posts' bodies converted to Markdown and rendered, a batch at a time, on every core.

Converting another platform's HTML (markdownify) and rendering the Markdown
(``content.rendering``: markdown-it, Pygments, nh3) are pure Python and cost
more than writing a post's rows, so a large import hands them to a pool of
processes, one a core, while the importing process reads the file and
writes the batch before.  Each post still goes through the editor's own
renderer and sanitiser; only where it runs changes.  A batch smaller than
``POOL_FROM`` (a small file, the end of a large one) and a machine with one
core do the work in the importing process, as does any batch after the pool
broke (a process killed): the batch is done again here, never lost.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from broadsheet.content.rendering import render_markdown

POOL_FROM = 50  # posts in a batch from which the pool is worth its processes
# Loaded once by the process that forks the pool's processes, not by each of them.
PRELOAD = ["broadsheet.porting.convert", "broadsheet.porting.wordpress", "broadsheet.porting.ghost"]

Body = Callable[[], str] | str  # a PostRecord's body: converted when called, or Markdown


@dataclass(frozen=True)
class Prepared:
    markdown: str
    html: str
    excerpt: str


def to_markdown(body: Body) -> str:
    return body() if callable(body) else body


def render(markdown: str) -> Prepared:
    rendered = render_markdown(markdown)
    return Prepared(markdown, rendered.html, rendered.excerpt)


def convert_and_render(body: Body) -> Prepared:
    return render(to_markdown(body))


def _each(work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [work(item) for item in items]


def _context() -> multiprocessing.context.BaseContext:
    """How the pool's processes start: forked from this process (at once, with every module
    loaded) while it runs one thread; else from a fork server, so that no process inherits
    a lock another thread held."""
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


class Pending:
    """A batch's results on their way; ``result`` waits for them."""

    def __init__(
        self,
        preparer: Preparer,
        work: Callable[[Any], Any],
        items: Sequence[Any],
        futures: list[Future[list[Any]]] | None,
    ) -> None:
        self.preparer, self.work, self.items, self.futures = preparer, work, items, futures

    def result(self) -> list[Any]:
        if self.futures is not None:
            try:
                return [done for future in self.futures for done in future.result()]
            except BrokenProcessPool:
                self.preparer.close(broken=True)  # a process died: this batch, and the rest,
        return _each(self.work, self.items)


class Preparer:
    """Runs ``work`` over a batch's items in a pool of processes, or here; ``close`` ends it."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes if processes is not None else (os.cpu_count() or 1)
        self.pool: ProcessPoolExecutor | None = None
        self.broken = False

    def submit(self, work: Callable[[Any], Any], items: Sequence[Any]) -> Pending:
        """Start ``work`` on every item (in order); the results come with ``result()``."""
        pool = self._pool() if len(items) >= POOL_FROM else None
        if pool is None:
            return Pending(self, work, items, None)
        size = -(-len(items) // (2 * self.processes))  # two chunks a process: even finishes
        try:
            futures = [
                pool.submit(_each, work, items[start : start + size])
                for start in range(0, len(items), size)
            ]
        except (BrokenProcessPool, OSError, AssertionError):  # no processes here (a daemon)
            self.close(broken=True)
            return Pending(self, work, items, None)
        return Pending(self, work, items, futures)

    def map(self, work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return self.submit(work, items).result()

    def _pool(self) -> ProcessPoolExecutor | None:
        if self.pool is None and self.processes > 1 and not self.broken:
            # Nothing left for a forked process's collector to finalise (a database
            # connection dropped but not yet collected would say goodbye on our socket).
            gc.collect()
            self.pool = ProcessPoolExecutor(self.processes, mp_context=_context())
        return self.pool

    def close(self, *, broken: bool = False) -> None:
        """End the pool (waiting for its processes); ``broken``: do the rest in this process."""
        self.broken = self.broken or broken
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
