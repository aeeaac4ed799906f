"""Extraction on every core: pages are read in worker processes while the crawl's threads fetch.

Reading a page (trafilatura, htmldate, lxml) is pure Python under the GIL; fetching is waiting.
So the harvest's threads fetch, and each page's body goes once to a worker process, which sends
back its `Page` (text, title, date, links). A worker that dies on a page (a parser crash, memory
exhausted) or hangs on one costs that page, not the run: the pool is rebuilt, and each page that
was in flight when it died is read again in a worker of its own, so the one that kills its own
reader is known, and reported unreadable, and the others are read.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from harvester.errors import ContentError
from harvester.web.extract import Page, parse_html

log = logging.getLogger("ccqm.extract")
PARENT_CHECK_SECONDS = 2.0

ParseHtml = Callable[[bytes, str, "str | None"], Page]


class ExtractPool:
    """`parse_html` in worker processes; thread-safe. `workers=0` reads pages in the calling thread.
    `read` is what the workers run (a module-level function, so that it can be sent to them)."""

    def __init__(self, workers: int | None = None, timeout: float = 60.0, read: ParseHtml = parse_html):
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.timeout, self.read = timeout, read
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._solo = threading.Semaphore(max(1, self.workers))  # pages read again alone, at most this many at once
        # spawn: workers start clean, never from a fork of this process with its threads and sockets
        # in flight; each ends itself if this process dies (a SIGKILL leaves no orphans behind)
        self._context = multiprocessing.get_context("spawn")

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                # no max_tasks_per_child: on Python 3.11 a worker retiring can hang the pool's shutdown
                self._executor = ProcessPoolExecutor(self.workers, mp_context=self._context,
                                                     initializer=_watch_parent, initargs=(os.getpid(),))
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor, kill: bool) -> None:
        """Drop a broken (or hung) pool; the next page starts a new one."""
        with self._lock:
            if self._executor is not broken:
                return  # another thread replaced it already
            self._executor = None
        _end(broken, kill)

    def parse_html(self, body: bytes, url: str, charset: str | None = None) -> Page:
        if self.workers <= 0:
            return self.read(body, url, charset)
        pool = self._pool()
        try:
            return pool.submit(self.read, body, url, charset).result(timeout=self.timeout)
        except FutureTimeout:
            self._replace(pool, kill=True)
            raise self._too_slow(url) from None
        except BrokenProcessPool:  # this page, or one beside it, killed a worker
            self._replace(pool, kill=False)
        with self._solo, ProcessPoolExecutor(1, mp_context=self._context, initializer=_watch_parent,
                                             initargs=(os.getpid(),)) as alone:
            try:
                return alone.submit(self.read, body, url, charset).result(timeout=self.timeout)
            except FutureTimeout:
                _end(alone, kill=True)
                raise self._too_slow(url) from None
            except BrokenProcessPool:
                log.warning("reading %s crashed its reader", url)
                raise ContentError("the page crashed the reader (a parser failed on it); not read") from None

    def _too_slow(self, url: str) -> ContentError:
        log.warning("reading %s took over %g s; its worker was stopped", url, self.timeout)
        return ContentError(f"reading the page took over {self.timeout:g} s")

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "ExtractPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _end(executor: ProcessPoolExecutor, kill: bool) -> None:
    """Shut a pool down without waiting; with `kill`, end its workers first (a hung one never returns)."""
    if kill:
        for process in list((executor._processes or {}).values()):
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


def _watch_parent(parent: int) -> None:
    """In a worker: end it once the harvest that started it is gone (killed, crashed)."""
    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)
    threading.Thread(target=watch, name="ccqm-parent-watch", daemon=True).start()
