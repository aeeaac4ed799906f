"""Extraction on every core: pages are read in worker processes while the crawl's threads fetch.

Reading a page (trafilatura, htmldate, lxml) is pure Python under the GIL; fetching is waiting.
So the harvest's threads fetch, and each page's body goes once to a reader process
(`harvester.web.reader`), which sends back its `Page` (text, title, date, links).

A reader is sent its next page while it still reads the one before (PIPELINE pages at most), so
it never waits for a busy harvest to hand it work. It reads them in the order sent, so a reader
that dies (a parser crash, memory exhausted) names the page that killed it: the one it was
reading. That page is read once more, by another reader, in case the death was not its doing, and
reported unreadable if it kills that one too; the pages queued behind it are simply sent again.
A reader that spends longer than `timeout` on one page is killed, and the page given up.

Plain subprocesses over pipes, not `multiprocessing`: a reader starts by importing only what it
reads with (never the CLI, the store or DuckDB), no resource-tracker process runs beside them,
and a reader whose harvest is gone sees its pipe close and ends (a SIGKILL leaves no orphans).
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import IO, Any, Callable

from harvester.errors import ContentError
from harvester.web.extract import Page, parse_html

log = logging.getLogger("ccqm.extract")

ParseHtml = Callable[[bytes, str, "str | None"], Page]
PIPELINE = 2  # pages sent to a reader at once: the one it reads, and the next
_SIZE = struct.Struct("!Q")


def send(pipe: IO[bytes], message: Any) -> None:
    """One pickled message, length first."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_SIZE.pack(len(data)) + data)
    pipe.flush()


def receive(pipe: IO[bytes]) -> Any:
    """The next message; EOFError when the other end has gone."""
    head = pipe.read(_SIZE.size)
    if len(head) < _SIZE.size:
        raise EOFError
    size = _SIZE.unpack(head)[0]
    data = pipe.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class _Died(Exception):
    """The reader ended while reading this page."""


class _Resend(Exception):
    """The reader ended before it began this page: send it again."""


class _TooSlow(Exception):
    """The reader was stopped after `timeout` on this page."""


class _Reader:
    """One reader process: pages go down its stdin in order, answers come back up its stdout in the
    same order, each to the future of the page it belongs to (a thread of its own listens)."""

    def __init__(self, read: ParseHtml):
        self.proc = subprocess.Popen([sys.executable, "-m", "harvester.web.reader"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.waiting: deque[Future] = deque()  # sent, not yet answered: the first is being read
        self.started = time.monotonic()  # when the first of them began
        self.too_slow = False
        self.gone = False  # its listener has failed what it was sent: nothing more may wait on it
        self.lock = threading.Lock()  # guards `waiting` and `gone`
        self.sending = threading.Lock()  # pages go down the pipe in the order of `waiting`
        send(self.proc.stdin, (sys.path, read.__module__, read.__qualname__))
        threading.Thread(target=self._answers, name="ccqm-reader-answers", daemon=True).start()

    def send(self, body: bytes, url: str, charset: str | None) -> Future:
        future: Future = Future()
        with self.sending:
            with self.lock:
                if self.gone:  # it died after it was chosen: the page goes to another reader
                    future.set_exception(_Resend())
                    return future
                if not self.waiting:
                    self.started = time.monotonic()
                self.waiting.append(future)
            try:
                send(self.proc.stdin, (body, url, charset))
            except OSError:  # it has died: its listener fails what it was sent
                pass
        return future

    def _answers(self) -> None:
        while True:
            try:
                ok, answer = receive(self.proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                return self._gone()
            with self.lock:
                future = self.waiting.popleft()
                self.started = time.monotonic()
            if ok:
                future.set_result(answer)
            else:
                future.set_exception(ContentError(answer))

    def _gone(self) -> None:
        self.proc.kill()
        self.proc.wait()
        with self.lock:
            waiting, self.waiting, self.gone = list(self.waiting), deque(), True
        for n, future in enumerate(waiting):
            future.set_exception(_Resend() if n else _TooSlow() if self.too_slow else _Died())

    def busy(self) -> int:
        with self.lock:
            return len(self.waiting)

    def stop_if_stuck(self, timeout: float) -> None:
        with self.lock:
            stuck = bool(self.waiting) and time.monotonic() - self.started > timeout
            if stuck:
                self.too_slow = True
        if stuck:
            self.proc.kill()  # its listener sees the pipe close and fails what it was sent

    def end(self) -> None:
        """Close its pipe (a reader waiting for work then ends) and make sure it has ended."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class ExtractPool:
    """`parse_html` in reader processes; thread-safe. `workers=0` reads pages in the calling thread.
    `read` is what the readers run: a module-level function, imported by its name in each reader."""

    def __init__(self, workers: int | None = None, timeout: float = 60.0, read: ParseHtml = parse_html):
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.timeout, self.read = timeout, read
        self._readers: list[_Reader] = []
        self._room = threading.Condition()  # a reader has room for another page
        self._closed = threading.Event()
        self._watch: threading.Thread | None = None

    def parse_html(self, body: bytes, url: str, charset: str | None = None) -> Page:
        if self.workers <= 0:
            return self.read(body, url, charset)
        attempts = 0
        while True:
            try:
                return self._in_a_reader(body, url, charset)
            except _Resend:
                continue
            except _TooSlow:
                log.warning("reading %s took over %g s; its reader was stopped", url, self.timeout)
                raise ContentError(f"reading the page took over {self.timeout:g} s") from None
            except _Died:
                attempts += 1
                if attempts == 2:
                    log.warning("reading %s crashed its reader, twice", url)
                    raise ContentError("the page crashed the reader (a parser failed on it); not read") from None

    def _in_a_reader(self, body: bytes, url: str, charset: str | None) -> Page:
        future = self._reader().send(body, url, charset)
        try:
            return future.result()
        finally:
            with self._room:
                self._room.notify()

    def _reader(self) -> _Reader:
        """The reader with the fewest pages in hand, once one has room (a new one while fewer
        than `workers` are alive)."""
        with self._room:
            while True:
                if self._closed.is_set():
                    raise ContentError("the harvest is ending; the page was not read")
                self._readers = [r for r in self._readers if not r.gone]
                if len(self._readers) < self.workers:
                    self._readers.append(_Reader(self.read))
                    self._watching()
                best = min(self._readers, key=_Reader.busy)
                if best.busy() < PIPELINE:
                    return best
                self._room.wait(0.5)

    def _watching(self) -> None:
        if self._watch is None:
            self._watch = threading.Thread(target=self._stop_stuck_readers, name="ccqm-reader-watch", daemon=True)
            self._watch.start()

    def _stop_stuck_readers(self) -> None:
        while not self._closed.wait(min(1.0, self.timeout / 4)):
            with self._room:
                readers = list(self._readers)
            for reader in readers:
                reader.stop_if_stuck(self.timeout)

    def close(self) -> None:
        with self._room:
            self._closed.set()
            readers, self._readers = self._readers, []
            self._room.notify_all()
        for reader in readers:
            reader.end()

    def __enter__(self) -> "ExtractPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
