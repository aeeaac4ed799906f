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
from concurrent.futures import ProcessPoolExecutor, TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Callable

from harvester.errors import ContentError
from harvester.web.extract import Page, parse_html

log = logging.getLogger("ccqm.extract")
TASKS_PER_WORKER = 2000  # a worker is replaced after this many pages, so parser memory cannot creep

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
        # forkserver: workers start from a clean process that has loaded the parsers once, never from
        # a fork of this one with its threads and sockets in flight
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["harvester.web.extract"])

    def _pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(self.workers, mp_context=self._context,
                                                     max_tasks_per_child=TASKS_PER_WORKER)
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
        with self._solo, ProcessPoolExecutor(1, mp_context=self._context) as alone:
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
