"""Scoring stored evidence: map rows to scoring's dataclasses, classify what is new, roll up, save.

Classifications are cached per (item, text hash, scorer key), the key naming the rubric's version
and the classifier's version and hash, so a nightly `ccqm score` classifies only new or changed
text, and a new rubric or a retrained model reclassifies everything once.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from harvester.errors import UsageError
from harvester.items import utcnow
from harvester.config.classifier import classifier_path, load_classifier
from harvester.config.registry import Organisation
from harvester.config.settings import Settings
from harvester.store.db import Store, open_store
from scoring import Classification, Evidence, OrgScore, classify_text, describe_changes, score_organisation


@dataclass
class ScoreOutcome:
    org: Organisation
    before: OrgScore | None
    after: OrgScore
    changes: list[str]
    classified: int  # items classified afresh


def evidence_from_row(row: dict) -> Evidence:
    return Evidence(id=row["id"], org_id=row["org_id"], platform=row["platform"], title=row["title"] or "",
                    text=row["text"] or "", url=row["url"], published=row["published_at"],
                    first_seen=row["first_seen"], tags_scheme=bool(row["tags_scheme"]),
                    content_hash=row["content_hash"])


PARALLEL_FROM = 400  # fresh items worth starting worker processes for
_WORKER: tuple | str = "no classifier loaded"


def _start_worker(rubric, model_path: Path, key: str) -> None:
    """Each worker loads the classifier from its file itself, all of them at once: handing it over
    pickled kept the parent waiting on each worker's imports in turn (half a second each)."""
    global _WORKER
    model = load_classifier(model_path)
    _WORKER = (rubric, model) if model.key == key else (
        f"{model_path}: the classifier changed during scoring (now {model.key}, was {key}): score again")


def _classify_in_worker(body: str) -> Classification:
    if isinstance(_WORKER, str):
        raise UsageError(_WORKER)
    return classify_text(body, *_WORKER)


@contextmanager
def worker_pool(settings: Settings, texts: int) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes on every core (up to 8) when `texts` is enough to pay for them, else None.
    They start at once, so they load while the caller goes on reading what to classify."""
    cores = min(os.cpu_count() or 1, 8)
    if texts < PARALLEL_FROM or cores < 2:
        yield None
        return
    with ProcessPoolExecutor(max_workers=cores, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_start_worker,
                             initargs=(settings.rubric, classifier_path(settings.config_dir), settings.model.key)) as pool:
        for _ in range(cores):
            pool.submit(int)  # spawns the workers now, not at the first real task
        yield pool


Progress = Callable[[int, int], None]  # (texts classified so far, texts to classify)


def classify_each(items: list[Evidence], settings: Settings, on_classified: Progress | None = None,
                  pool: ProcessPoolExecutor | None = None) -> Iterator[Classification]:
    """Each item's classification, in order, as soon as it is known (so the caller can roll up an
    organisation while later ones are still being classified). Each distinct text is classified
    once (a page met under two addresses, a post shared twice), on every core when there are enough
    of them to pay for starting workers (in `pool`, if the caller has started them already)."""
    bodies = [item.body for item in items]
    distinct = list(dict.fromkeys(bodies))
    tick = on_classified or (lambda done, total: None)
    by_body: dict[str, Classification] = {}
    with worker_pool(settings, len(distinct)) if pool is None else nullcontext(pool) as pool:
        results = (pool.map(_classify_in_worker, distinct, chunksize=32) if pool
                   else (classify_text(body, settings.rubric, settings.model) for body in distinct))
        for body in bodies:  # a text not met before is the next one `results` gives: both go in first-met order
            if body not in by_body:
                by_body[body] = next(results)
                tick(len(by_body), len(distinct))
            yield by_body[body]


def every_tenth(echo: Callable[[str], None]) -> Progress:
    """A progress callback for logs: one line at each tenth of the texts classified."""
    def tick(done: int, total: int) -> None:
        if done == total or done * 10 // total > (done - 1) * 10 // total:
            echo(f"classified {done} of {total} texts")
    return tick


def _classify_and_roll_up(settings: Settings, orgs: tuple[Organisation, ...], stored: dict, classes: dict,
                          overrides: dict, now: dt.datetime, on_classified: Progress | None,
                          pool: ProcessPoolExecutor | None) -> tuple[dict[str, OrgScore], dict[str, list[tuple]]]:
    """Every organisation's new score, each rolled up as soon as its last item is classified, and
    its fresh classifications as rows to save; `classes` gains them."""
    missing = [(org.id, row) for org in orgs for row in stored[org.id] if row["id"] not in classes[org.id]]
    fresh: dict[str, list[tuple]] = {org.id: [] for org in orgs}
    waiting = Counter(org_id for org_id, _ in missing)
    after: dict[str, OrgScore] = {}

    def roll_up(org_id: str) -> None:
        after[org_id] = score_organisation(org_id, [evidence_from_row(r) for r in stored[org_id]], classes[org_id],
                                           overrides[org_id], settings.rubric, now, scorer=settings.scorer_key)

    for org in orgs:
        if not waiting[org.id]:
            roll_up(org.id)
    new = classify_each([evidence_from_row(row) for _, row in missing], settings, on_classified, pool)
    for (org_id, row), c in zip(missing, new):
        classes[org_id][row["id"]] = c
        fresh[org_id].append((row["id"], row["content_hash"], c))
        waiting[org_id] -= 1
        if not waiting[org_id]:
            roll_up(org_id)
    return after, fresh


def score(settings: Settings, orgs: tuple[Organisation, ...], now: dt.datetime | None = None,
          on_classified: Progress | None = None) -> list[ScoreOutcome]:
    """Score the organisations: read what is stored, classify what is new, roll up each
    organisation as soon as its last item is classified, and save every organisation's
    classifications and score in one transaction. Much to classify (a first scoring of many
    pages takes a minute or more) is done on every core, the workers starting as the reading does,
    with the database closed so that another process can use it meanwhile; a little (a nightly
    rescore) is done with it still open, and saved in the same opening, which costs more than the
    saving. `on_classified` hears how far classifying has got."""
    now = now or utcnow()
    with ExitStack() as workers:
        with open_store(settings.db_path) as store:
            store.sync_organisations(settings.organisations, now)
            unclassified = store.unclassified([o.id for o in orgs], settings.scorer_key)
            pool = workers.enter_context(worker_pool(settings, unclassified))
            stored = {org.id: store.items_for(org.id, snapshots=False) for org in orgs}
            classes = {org.id: store.classifications(stored[org.id], settings.scorer_key) for org in orgs}
            overrides = {org.id: store.overrides_for(org.id) for org in orgs}
            before = {org.id: store.latest_score(org.id) for org in orgs}
            if unclassified < PARALLEL_FROM:
                after, fresh = _classify_and_roll_up(settings, orgs, stored, classes, overrides, now, on_classified, pool)
                return _save(store, orgs, before, after, fresh, now)
        after, fresh = _classify_and_roll_up(settings, orgs, stored, classes, overrides, now, on_classified, pool)
    with open_store(settings.db_path) as store:
        return _save(store, orgs, before, after, fresh, now)


def _save(store: Store, orgs: tuple[Organisation, ...], before: dict, after: dict, fresh: dict,
          now: dt.datetime) -> list[ScoreOutcome]:
    """Every organisation's fresh classifications and new score, in one transaction."""
    outcomes = []
    with store.batch():
        for org in orgs:
            changes = describe_changes(before[org.id], after[org.id])
            store.save_classifications(fresh[org.id], now)
            store.save_score(after[org.id], changes)
            outcomes.append(ScoreOutcome(org=org, before=before[org.id], after=after[org.id], changes=changes,
                                         classified=len(fresh[org.id])))
    return outcomes
