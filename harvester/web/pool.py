"""Extraction on every core: pages are read in worker processes while the crawl's threads fetch.

Reading a page (trafilatura, htmldate, lxml) is pure Python under the GIL; fetching is waiting.
So the harvest's threads fetch, and each page's body goes once to a reader process
(`harvester.web.reader`), which sends back its `Page` (text, title, date, links).

Each reader reads one page at a time, so a reader that dies (a parser crash, memory exhausted)
names the page that killed it: that page is read once more in a fresh reader, in case the death
was not its doing, and reported unreadable if it kills that one too; the pages beside it never
notice. A reader that takes longer than `timeout` on a page is killed, and the page given up.

Plain subprocesses over pipes, not `multiprocessing`: a reader starts by importing only what it
reads with (never the CLI, the store or DuckDB), no resource-tracker process runs beside them,
and a reader whose harvest is gone sees its pipe close and ends (a SIGKILL leaves no orphans).
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from typing import IO, Any, Callable

from harvester.errors import ContentError
from harvester.web.extract import Page, parse_html

log = logging.getLogger("ccqm.extract")

ParseHtml = Callable[[bytes, str, "str | None"], Page]
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
    data = pipe.read(_SIZE.unpack(head)[0])
    if len(data) < _SIZE.unpack(head)[0]:
        raise EOFError
    return pickle.loads(data)


class _Died(Exception):
    """The reader ended while reading a page."""


class _Reader:
    """One reader process and its pipes. Not thread-safe: the pool hands it to one thread at a time."""

    def __init__(self, read: ParseHtml):
        self.proc = subprocess.Popen([sys.executable, "-m", "harvester.web.reader"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        send(self.proc.stdin, (sys.path, read.__module__, read.__qualname__))

    def read(self, body: bytes, url: str, charset: str | None, timeout: float) -> Page:
        stopped = threading.Event()

        def stop() -> None:
            stopped.set()
            self.proc.kill()

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            send(self.proc.stdin, (body, url, charset))
            ok, answer = receive(self.proc.stdout)
        except (EOFError, OSError):
            self.end()
            raise (TimeoutError if stopped.is_set() else _Died) from None
        finally:
            timer.cancel()
        if not ok:
            raise ContentError(answer)
        return answer

    def end(self) -> None:
        """Stop it now (closing its pipe is enough for a reader that is waiting for work)."""
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
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
        self._idle: queue.LifoQueue[_Reader] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max(1, self.workers))  # readers in use, at most this many
        self._all: set[_Reader] = set()
        self._lock = threading.Lock()
        self._closed = False

    def parse_html(self, body: bytes, url: str, charset: str | None = None) -> Page:
        if self.workers <= 0:
            return self.read(body, url, charset)
        for attempt in (1, 2):
            try:
                return self._in_a_reader(body, url, charset)
            except TimeoutError:
                log.warning("reading %s took over %g s; its reader was stopped", url, self.timeout)
                raise ContentError(f"reading the page took over {self.timeout:g} s") from None
            except _Died:
                if attempt == 2:
                    log.warning("reading %s crashed its reader, twice", url)
        raise ContentError("the page crashed the reader (a parser failed on it); not read")

    def _in_a_reader(self, body: bytes, url: str, charset: str | None) -> Page:
        with self._slots:
            reader = self._take()
            try:
                page = reader.read(body, url, charset, self.timeout)
            except (TimeoutError, _Died):
                self._forget(reader)
                raise
            except BaseException:
                self._give_back(reader)
                raise
            self._give_back(reader)
            return page

    def _take(self) -> _Reader:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        reader = _Reader(self.read)
        with self._lock:
            if self._closed:
                reader.end()
                raise ContentError("the harvest is ending; the page was not read")
            self._all.add(reader)
        return reader

    def _give_back(self, reader: _Reader) -> None:
        with self._lock:
            closed = self._closed
        if closed:
            reader.end()
        else:
            self._idle.put(reader)

    def _forget(self, reader: _Reader) -> None:
        with self._lock:
            self._all.discard(reader)

    def close(self) -> None:
        with self._lock:
            self._closed, readers, self._all = True, self._all, set()
        for reader in readers:
            reader.end()

    def __enter__(self) -> "ExtractPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
