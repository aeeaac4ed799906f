"""The harvest: every source of every chosen organisation, through its collector, into the store.

Collectors run with the database closed; their events are saved per source in one short
store session, and a source's cursor advances only with its items committed. One source failing
(a site down, a malformed API answer, a bug in a parser) is recorded in `run_errors` and on the
source, and the run goes on. Organisations are harvested `harvest.concurrency` at a time; each
site's own politeness is kept by the HTTP client.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable

from harvester.collectors import CollectRequest, collector_for
from harvester.errors import CcqmError
from harvester.web.client import Http, build_client
from harvester.items import Gone, Item, NextCursor, Problem, Seen, item_id, utcnow
from harvester.config.registry import Organisation, SourceSpec
from harvester.config.settings import Settings
from harvester.store.db import open_store

log = logging.getLogger("ccqm.harvest")


@dataclass
class SourceOutcome:
    source: SourceSpec
    status: str  # ok, partial (some URLs failed), failed, skipped
    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class HarvestReport:
    run_id: str
    outcomes: list[SourceOutcome]

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
    """Serialises this process's short store sessions (DuckDB allows one writer)."""

    def __init__(self, db_path):
        self.db_path, self.lock = db_path, threading.Lock()

    def __call__(self):
        return _Session(self)


class _Session:
    def __init__(self, writer: _Writer):
        self.writer = writer

    def __enter__(self):
        self.writer.lock.acquire()
        try:
            self.ctx = open_store(self.writer.db_path)
            return self.ctx.__enter__()
        except BaseException:
            self.writer.lock.release()
            raise

    def __exit__(self, *exc):
        try:
            return self.ctx.__exit__(*exc)
        finally:
            self.writer.lock.release()


def _save_events(store, spec: SourceSpec, events: list, run_id: str, outcome: SourceOutcome) -> None:
    now = utcnow()
    for event in events:
        if isinstance(event, Item):
            outcome.counts[store.save_item(event, now)] += 1
        elif isinstance(event, Seen):
            store.mark_seen(item_id(event.platform, event.native_id), now)
            outcome.counts["unchanged"] += 1
        elif isinstance(event, Gone):
            if store.mark_gone(item_id(event.platform, event.native_id), now):
                outcome.counts["gone"] += 1
        elif isinstance(event, Problem):
            outcome.counts["failed"] += 1
            outcome.errors.append(str(event.error))
            store.record_error(run_id, org_id=spec.org_id, source_id=spec.id, url=event.url, error=event.error,
                               now=now)


def harvest_source(settings: Settings, spec: SourceSpec, http: Http, session, run_id: str) -> SourceOutcome:
    """Collect one source and save what it yields."""
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
        validators = store.page_validators(spec.org_id) if spec.platform == "website" else {}
    request = CollectRequest(source=spec, cursor=cursor, http=http, settings=settings, validators=validators)
    events, next_cursor, failure = [], None, None
    try:
        for event in collector(request):
            if isinstance(event, NextCursor):
                next_cursor = event.value
            else:
                events.append(event)
    except CcqmError as exc:
        failure = exc
    except Exception as exc:  # a bug or an answer no parser expected: this source fails, the run goes on
        failure = exc
        log.debug("collector crashed on %s", spec.id, exc_info=True)
    with session() as store:
        _save_events(store, spec, events, run_id, outcome)
        now = utcnow()
        if failure is not None:
            message = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
            if not isinstance(failure, CcqmError):
                message = f"{spec.id}: unexpected {type(failure).__name__}: {message}"
            outcome.status, outcome.errors = "failed", outcome.errors + [message]
            outcome.counts["failed"] += 1
            store.record_error(run_id, org_id=spec.org_id, source_id=spec.id, url=getattr(failure, "url", None),
                               error=failure, now=now)
            store.finish_source(spec, cursor=None, error=message, now=now)
        else:
            if outcome.errors:
                outcome.status = "partial"
            store.finish_source(spec, cursor=next_cursor, error=None, now=now)
        outcome.seconds = time.monotonic() - started
        store.record_source_run(run_id, spec, outcome.counts, outcome.status, outcome.seconds)
    return outcome


def harvest(settings: Settings, orgs: tuple[Organisation, ...], *, http: Http | None = None,
            on_source: Callable[[SourceOutcome], None] | None = None) -> HarvestReport:
    """Harvest the given organisations; `on_source` is told as each source finishes (progress)."""
    session = _Writer(settings.db_path)
    with session() as store:
        store.sync_organisations(settings.organisations, utcnow())
        run_id = store.start_run("crawl", utcnow())
    own_http = http is None
    http = http or build_client(settings.http, settings.harvest)
    outcomes: list[SourceOutcome] = []
    status = "failed"
    try:
        def one_org(org: Organisation) -> list[SourceOutcome]:
            results = []
            for spec in org.sources:
                result = harvest_source(settings, spec, http, session, run_id)
                results.append(result)
                if on_source:
                    on_source(result)
            return results

        with ThreadPoolExecutor(max_workers=max(1, settings.harvest.concurrency)) as pool:
            for future in as_completed([pool.submit(one_org, org) for org in orgs]):
                outcomes.extend(future.result())
        status = "partial" if any(o.status == "failed" for o in outcomes) else "ok"
    except Exception:
        status = "failed"
        raise
    except BaseException:  # Ctrl-C, SIGTERM via SystemExit: recorded as such, then re-raised
        status = "interrupted"
        raise
    finally:
        if own_http:
            http.close()
        report = HarvestReport(run_id=run_id, outcomes=outcomes)
        with session() as store:
            store.finish_run(run_id, status, dict(report.totals), utcnow())
    return report
