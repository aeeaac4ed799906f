"""The harvest: every source of every chosen organisation, through its collector, into the store.

Collectors run with the database closed. What they yield is saved as it arrives, in batches of
`harvest.batch_items` or every `harvest.batch_seconds`, queued for one writer thread that saves
all that is queued in one transaction (`_Writer`): a kill loses at most what is queued (a few MB),
memory stays bounded whatever the size of a site, and a page stored before a kill is asked for
conditionally next time (304), not downloaded again. A source's cursor advances only once
everything before it is committed. One source failing (a site down, a malformed API answer, a bug
in a parser) is recorded in `run_errors` and on the source, and the run goes on. Organisations are harvested `harvest.concurrency` at a time; each site's
own politeness is kept by the HTTP client.

`stop` (a threading.Event) ends a run early: each source saves what it has and says
`interrupted`, and the run is recorded `interrupted` with its counts.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable

from harvester.collectors import CollectRequest, collector_for
from harvester.config.scheme import scheme_sources
from harvester.errors import BusyError, CcqmError, NotConnected
from harvester.web.client import Http, build_client
from harvester.web.pool import ExtractPool
from harvester.items import (
    Checkpoint, Gone, Item, NextCursor, Problem, ProfileLinks, Refused, Seen, item_id, utcnow, visible,
)
from harvester.config.registry import Organisation, SourceSpec
from harvester.config.settings import Settings
from harvester.store.db import open_store

log = logging.getLogger("ccqm.harvest")


@dataclass
class SourceOutcome:
    source: SourceSpec
    status: str  # ok, partial (some URLs failed), failed, skipped, interrupted
    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class HarvestReport:
    run_id: str
    outcomes: list[SourceOutcome]
    interrupted: bool = False

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def totals(self) -> Counter:
        total: Counter = Counter()
        for o in self.outcomes:
            total.update(o.counts)
        return total


class _Writer:
    """This process's one writer (DuckDB allows one) and its store sessions, over one connection.

    Sources do not write: they queue their batches (`submit`) and go on collecting, and a writer
    thread saves whatever is queued in one transaction, one statement per kind of row for all of it
    (a group commit; DuckDB's cost is mostly per statement: 7 ms an item in batches of 10, 1.2 ms in
    batches of 250). Sources that each waited for their own write had crawled in lock step: all
    waiting for the writer, then all for the page readers. At most MAX_QUEUED_BYTES wait to be
    written, so memory stays bounded and a kill loses little.

    Opening and closing the file for every batch cost more than the writes (closing checkpoints the
    file). So the connection stays open while the harvest keeps writing, and closes when it has
    been idle IDLE_SECONDS or held HOLD_SECONDS: a rescore in another process gets its turn within
    seconds. Reads (a source's cursor, its stored validators) take a session of their own.
    """

    IDLE_SECONDS = 0.25
    HOLD_SECONDS = 10.0
    YIELD_SECONDS = 0.5  # after closing a held connection, the pause that lets another process in
    # Text and bodies waiting to be written; a source waits beyond it. 3 MB: 5 MB less peak than 8 MB,
    # as fast (bench/crawl.py).
    MAX_QUEUED_BYTES = 3_000_000

    def __init__(self, db_path):
        self.db_path, self.lock = db_path, threading.Lock()
        self.ctx, self.store, self.opened, self.used = None, None, 0.0, 0.0
        self.queue: list[_Batch] = []
        self.queued_bytes = 0
        self.queue_changed = threading.Condition()
        self.stopped = threading.Event()
        self.closer = threading.Thread(target=self._close_when_idle, name="ccqm-store-closer", daemon=True)
        self.closer.start()
        self.writer = threading.Thread(target=self._write_queued, name="ccqm-store-writer", daemon=True)
        self.writer.start()

    def __call__(self):
        return _Session(self)

    def submit(self, batch: "_Batch") -> None:
        """Queue a source's batch for the writer; wait only while the queue is full."""
        with self.queue_changed:
            while self.queue and self.queued_bytes + batch.size > self.MAX_QUEUED_BYTES:
                self.queue_changed.wait()
            self.queue.append(batch)
            self.queued_bytes += batch.size
            self.queue_changed.notify_all()

    def save(self, batch: "_Batch") -> None:
        """Queue a batch and wait until it is written (or has failed: its error is raised)."""
        self.submit(batch)
        batch.done.wait()
        if batch.error is not None:
            raise batch.error

    def _write_queued(self) -> None:
        """The writer thread: everything queued, group by group, until closed and drained."""
        while True:
            with self.queue_changed:
                while not self.queue and not self.stopped.is_set():
                    self.queue_changed.wait()
                if not self.queue:
                    return
                group, self.queue, self.queued_bytes = self.queue, [], 0
                self.queue_changed.notify_all()
            try:
                with self() as store:
                    if not _save_group(store, group):
                        self.shut()  # a failed write may leave the connection unusable: the next opens anew
            except BaseException as exc:  # the store would not open (locked, full): the group fails
                for batch in group:
                    batch.error = batch.error or exc
            finally:
                for batch in group:
                    batch.events = []  # written (or failed): its source keeps only the tally
                    batch.done.set()

    def open(self):
        if self.store is None:
            self.ctx = open_store(self.db_path, lean=True)
            self.store, self.opened = self.ctx.__enter__(), time.monotonic()
        return self.store

    def shut(self, *exc) -> None:
        """Close the connection (committing nothing pending: each session commits its own work);
        an error in the session passes through open_store's translation."""
        ctx, self.ctx, self.store = self.ctx, None, None
        if ctx is not None:
            ctx.__exit__(*(exc or (None, None, None)))

    def _close_when_idle(self) -> None:
        while not self.stopped.wait(self.IDLE_SECONDS / 2):
            if self.store is not None and time.monotonic() - self.used >= self.IDLE_SECONDS:
                with self.lock:
                    if self.store is not None and time.monotonic() - self.used >= self.IDLE_SECONDS:
                        self.shut()

    def close(self) -> None:
        """Write what is still queued, then close."""
        with self.queue_changed:
            self.stopped.set()
            self.queue_changed.notify_all()
        self.writer.join()
        with self.lock:
            self.shut()


class _Session:
    def __init__(self, writer: _Writer):
        self.writer = writer

    def __enter__(self):
        self.writer.lock.acquire()
        try:
            return self.writer.open()
        except BaseException:
            self.writer.lock.release()
            raise

    def __exit__(self, *exc):
        writer = self.writer
        try:
            writer.used = time.monotonic()
            if exc[0] is not None:
                writer.shut(*exc)  # raises the store's own one-line error for a database failure
            elif writer.used - writer.opened >= writer.HOLD_SECONDS:
                writer.shut()
                time.sleep(writer.YIELD_SECONDS)
        finally:
            writer.lock.release()
        return False


class _StoredValidators(Mapping):
    """A site's stored ETags and Last-Modified dates, read when the collector first asks: a re-crawl
    that skips every page by its sitemap's dates never asks, and spares the store a query."""

    def __init__(self, session, source_id: str):
        self.session, self.source_id, self._loaded = session, source_id, None

    def _all(self) -> dict:
        if self._loaded is None:
            with self.session() as store:
                self._loaded = store.page_validators(self.source_id)
        return self._loaded

    def __getitem__(self, url):
        return self._all()[url]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


# A batch is also saved once its pages hold this much text and raw body: DuckDB needs several times a
# batch's size while it writes it, and a site of large pages must not raise the harvest's peak memory.
BATCH_MAX_BYTES = 3_000_000


def _size(event) -> int:
    """What an event holds in memory: its text, its snapshot's body and the raw record it came from,
    counted with the first item that brings it (an API page shared by 40 posts counts once; a page
    served uncompressed is its own raw record, the same bytes, not counted twice)."""
    if not isinstance(event, Item):
        return 0
    snapshot = event.snapshot
    if snapshot is None:
        return len(event.text or "")
    record = snapshot.record
    raw = record.accounted() if record is not None and record.payload is not snapshot.body else 0
    return len(event.text or "") + len(snapshot.body) + raw


@dataclass(eq=False)
class _Batch:
    """What one source has to save now, queued for the writer (`_Writer.submit`). The writer
    tallies what became of its items in `counts` and `errors` (never in the source's outcome,
    which the source is still filling in); `then` is the source's other writes (its checkpoint,
    at the end its tally), made in the same transaction after its events."""

    spec: SourceSpec
    events: list
    run_id: str
    then: Callable[[Any], None] | None = None
    size: int = 0  # bytes of text and bodies it holds
    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    error: BaseException | None = None  # why it could not be written
    done: threading.Event = field(default_factory=threading.Event)


def _write(store, group: list[_Batch]) -> None:
    """The group's events, each kind of row in as few statements as the group allows, then each
    batch's own writes. Two sources that yield the same item (a website two organisations share)
    save it in turn, each with its own attribution, as they would alone."""
    now = utcnow()
    for part in _distinct_items(group):
        items = [(batch, e) for batch in part for e in batch.events if isinstance(e, Item)]
        for (batch, _), result in zip(items, store.save_items([e for _, e in items], now)):
            batch.counts[result] += 1
    seen = [(batch, item_id(e.platform, e.native_id)) for batch in group for e in batch.events if isinstance(e, Seen)]
    if seen:
        store.mark_seen_many([i for _, i in seen], now)
        for batch, _ in seen:
            batch.counts["unchanged"] += 1
    for batch in group:
        spec = batch.spec
        for event in batch.events:
            if isinstance(event, Gone):
                if store.mark_gone(item_id(event.platform, event.native_id), now):
                    batch.counts["gone"] += 1
            elif isinstance(event, Problem):
                batch.counts["failed"] += 1
                batch.errors.append(str(event.error))
                store.record_error(run_id=batch.run_id, org_id=spec.org_id, source_id=spec.id, url=event.url,
                                   error=event.error, now=now)
        if batch.then is not None:
            batch.then(store)


def _distinct_items(group: list[_Batch]) -> list[list[_Batch]]:
    """The group in parts whose batches share no item: each part is saved in one go."""
    parts: list[tuple[list[_Batch], set[str]]] = []
    for batch in group:
        ids = {e.id for e in batch.events if isinstance(e, Item)}
        for part, taken in parts:
            if not ids & taken:
                part.append(batch)
                taken |= ids
                break
        else:
            parts.append(([batch], ids))
    return [part for part, _ in parts]


def _save_group(store, group: list[_Batch]) -> bool:
    """Write the group in one transaction, else each batch in its own; False if any failed (that
    batch's `error` says why). A failed transaction's tallies are taken back with it."""
    if len(group) > 1:
        try:
            with store.batch():
                _write(store, group)
            return True
        except Exception:
            for batch in group:
                batch.counts, batch.errors = Counter(), []
    ok = True
    for batch in group:
        try:
            with store.batch():
                _write(store, [batch])
        except Exception as exc:
            batch.counts, batch.errors = Counter(), []
            batch.error, ok = exc, False
    return ok


def _saving_checkpoint(spec: SourceSpec, checkpoint: Checkpoint | None) -> Callable[[Any], None] | None:
    """A source's checkpoint, saved with the batch it follows (never before it is committed)."""
    if checkpoint is None:
        return None
    return lambda store: store.save_checkpoint(spec.id, checkpoint.resolve())


def harvest_source(settings: Settings, spec: SourceSpec, http: Http, session, run_id: str,
                   stop: threading.Event | None = None, reader: ExtractPool | None = None) -> SourceOutcome:
    """Collect one source and save what it yields, batch by batch."""
    outcome = SourceOutcome(source=spec, status="ok")
    collector = collector_for(spec.platform)
    if collector is None:  # not collectable is not absent: the run and the dossier say so
        outcome.status = "skipped"
        outcome.errors.append(f"not collected: ccqm has no {spec.platform} collector yet")
        with session() as store:
            store.record_source_run(run_id, spec, outcome.counts, outcome.status, 0.0)
        return outcome
    started = time.monotonic()
    with session() as store:
        cursor = store.cursor(spec.id)
    validators = _StoredValidators(session, spec.id) if spec.platform == "website" else {}
    request = CollectRequest(source=spec, cursor=cursor, http=http, settings=settings, validators=validators,
                             **({"parse_html": reader.parse_html} if reader is not None else {}))
    events: list = []
    batches: list[_Batch] = []  # queued for the writer, in order
    next_cursor, checkpoint, failure, saved_at, batch_bytes = None, None, None, time.monotonic(), 0
    profiles: tuple[str, ...] = ()
    try:
        for event in collector(request):
            if isinstance(event, NextCursor):
                next_cursor = event.value
            elif isinstance(event, Checkpoint):
                checkpoint = event
            elif isinstance(event, ProfileLinks):
                profiles = event.urls
            elif isinstance(event, Refused):  # logged and counted now, not when the site ends
                outcome.counts["refused"] += 1
                log.info("refused %s: %s", visible(event.url), visible(event.reason))
            else:
                events.append(event)
                batch_bytes += _size(event)
            limits = settings.harvest
            if (len(events) >= limits.batch_items or batch_bytes >= BATCH_MAX_BYTES
                    or (events and time.monotonic() - saved_at >= limits.batch_seconds)):
                unwritten = next((b.error for b in batches if b.error is not None), None)
                if unwritten is not None:  # an earlier batch could not be written: the source stops there
                    raise unwritten
                batches.append(_Batch(spec, events, run_id, _saving_checkpoint(spec, checkpoint), batch_bytes))
                session.submit(batches[-1])
                events, saved_at, checkpoint, batch_bytes = [], time.monotonic(), None, 0
            if stop is not None and stop.is_set():
                outcome.status = "interrupted"
                break
            if time.monotonic() - started > settings.harvest.site_budget_seconds:
                budget = settings.harvest.site_budget_seconds
                outcome.errors.append(f"{spec.id}: stopped at its {budget:g} s budget; the rest waits for the next run")
                outcome.counts["refused"] += 1
                log.warning("%s", outcome.errors[-1])
                break
    except NotConnected as exc:  # no credential for it: skipped, like a platform ccqm does not collect
        outcome.status = "skipped"
        outcome.errors.append(f"not collected: {exc}")
    except CcqmError as exc:
        failure = exc
    except Exception as exc:  # a bug or an answer no parser expected: this source fails, the run goes on
        failure = exc
        log.debug("collector crashed on %s", spec.id, exc_info=True)
    if failure is not None and stop is not None and stop.is_set():
        outcome.status, failure = "interrupted", None  # the stop cut its request short: not the site's fault

    done: list[SourceOutcome] = []

    def finish(store) -> None:
        """With the last batch, once every batch before it is written: the source's tally, its
        cursor and its record, in the same commit. It fills in a copy of the outcome, so that a
        group written again batch by batch (see `_save_group`) counts nothing twice."""
        final = SourceOutcome(source=spec, status=outcome.status, counts=Counter(outcome.counts),
                              errors=list(outcome.errors))
        for batch in batches:
            final.counts.update(batch.counts)
            final.errors += batch.errors
        problem = failure or next((b.error for b in batches if b.error is not None), None)
        if profiles:
            store.verify_handles(spec.org_id, list(profiles), utcnow())
        if checkpoint is not None and problem is None and next_cursor is None:
            store.save_checkpoint(spec.id, checkpoint.resolve())  # stopped mid-source: resume from here
        now = utcnow()
        if problem is not None:
            message = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
            if not isinstance(problem, CcqmError):
                message = f"{spec.id}: unexpected {type(problem).__name__}: {message}"
            final.status, final.errors = "failed", final.errors + [message]
            final.counts["failed"] += 1
            store.record_error(run_id, org_id=spec.org_id, source_id=spec.id, url=getattr(problem, "url", None),
                               error=problem, now=now)
            store.finish_source(spec, cursor=None, error=message, now=now)
        elif final.status == "interrupted":  # what was saved stays; the cursor waits for a whole run
            store.note_attempt(spec, now)
        elif final.status == "skipped":  # the dossier says what would connect it
            store.finish_source(spec, cursor=None, error=final.errors[-1], now=now)
        else:
            if final.errors:
                final.status = "partial"
            store.finish_source(spec, cursor=next_cursor, error=None, now=now)
        final.seconds = time.monotonic() - started
        store.record_source_run(run_id, spec, final.counts, final.status, final.seconds)
        done[:] = [final]

    batches.append(_Batch(spec, events, run_id, finish, batch_bytes))
    session.save(batches[-1])
    return done[0]


@contextmanager
def harvest_lock(db_path: Path):
    """Held for a whole harvest: a second one started meanwhile says so and stops."""
    path = Path(f"{db_path}.harvest-lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise BusyError(f"{db_path}: a harvest is already running ({holder}); this one stops") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, since {utcnow():%Y-%m-%d %H:%M UTC}")
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def stopping_on_signals(stop: threading.Event, http: Http):
    """SIGINT and SIGTERM end the run within seconds: the first sets `stop` and cuts requests in
    flight (batches already fetched are saved, the run is recorded `interrupted`); a second
    exits at once. Only the main thread can take signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        if stop.is_set():
            os._exit(128 + signum)
        stop.set()
        log.warning("stopping (%s): saving what was fetched; send it again to quit at once",
                    signal.Signals(signum).name)
        threading.Thread(target=http.close, daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates an arena of its own and keeps what is freed in it: a
    harvest's dozens of fetching threads held ~20 MB of its peak that way. Two arenas serve them as
    fast (measured with bench/crawl.py). Elsewhere than glibc, nothing to do."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX: for arenas made from now on
    except (OSError, AttributeError):
        pass


def reader_count(configured: int) -> int:
    """The page readers a harvest runs: as configured, else one per core but one. The harvest's own
    process (fetching, hashing, storing) keeps that core busy, and on the two-core machine a
    second reader gained under 10% in pages a second for 60 MB more (bench/crawl.py)."""
    return configured or max(1, (os.cpu_count() or 1) - 1)


def harvest(settings: Settings, orgs: tuple[Organisation, ...], *, http: Http | None = None,
            on_source: Callable[[SourceOutcome], None] | None = None,
            stop: threading.Event | None = None, scheme: bool = False) -> HarvestReport:
    """Harvest the given organisations, and with `scheme` the scheme's own sources (mentions and
    tags of @iCCQM, which any organisation's post may turn up in); `on_source` is told as each
    source finishes (progress)."""
    stop = stop or threading.Event()
    _fewer_malloc_arenas()
    with harvest_lock(settings.db_path):
        session = _Writer(settings.db_path)
        try:
            return _harvest(settings, orgs, http, on_source, stop, scheme, session)
        finally:
            session.close()


def _harvest(settings: Settings, orgs: tuple[Organisation, ...], http: Http | None,
             on_source: Callable[[SourceOutcome], None] | None, stop: threading.Event,
             scheme: bool, session: _Writer) -> HarvestReport:
    scheme_specs = scheme_sources(settings.scheme)
    with session() as store:
        stale = store.interrupt_stale_runs(utcnow())
        if stale:
            log.warning("%d earlier run(s) had been cut off; marked interrupted", stale)
        store.sync_organisations(settings.organisations, utcnow(), scheme_specs)
        run_id = store.start_run("crawl", utcnow())
    own_http = http is None
    http = http or build_client(settings.http, settings.harvest)
    outcomes: list[SourceOutcome] = []
    status = "failed"
    try:
        def one_group(specs: tuple[SourceSpec, ...]) -> list[SourceOutcome]:
            results = []
            for spec in specs:
                if stop.is_set():
                    break
                result = harvest_source(settings, spec, http, session, run_id, stop, reader)
                results.append(result)
                if on_source:
                    on_source(result)
            return results

        with stopping_on_signals(stop, http), ExtractPool(reader_count(settings.harvest.extract_workers)) as reader, \
                ThreadPoolExecutor(max_workers=max(1, settings.harvest.concurrency)) as pool:
            groups = [org.sources for org in orgs] + ([scheme_specs] if scheme and scheme_specs else [])
            for future in as_completed([pool.submit(one_group, specs) for specs in groups]):
                outcomes.extend(future.result())
        if stop.is_set():
            status = "interrupted"
        else:
            status = "partial" if any(o.status == "failed" for o in outcomes) else "ok"
    except Exception:
        status = "failed"
        raise
    except BaseException:  # an interrupt that got past the handler: recorded as such, then re-raised
        status = "interrupted"
        raise
    finally:
        if own_http:
            http.close()
        report = HarvestReport(run_id=run_id, outcomes=outcomes, interrupted=status == "interrupted")
        with session() as store:
            store.finish_run(run_id, status, dict(report.totals), utcnow())
    return report
