"""Scoring stored evidence: map rows to scoring's dataclasses, classify what is new, roll up, save.

Classifications are cached per (item, text hash, rubric version), so a nightly `ccqm score`
classifies only new or changed text, and a rubric edit reclassifies everything once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from harvester.items import utcnow
from harvester.config.registry import Organisation
from harvester.config.settings import Settings
from harvester.store.db import Store, open_store
from scoring import Classification, Evidence, OrgScore, classify_evidence, describe_changes, score_organisation


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


def classify_rows(store: Store, rows: list[dict], settings: Settings, now: dt.datetime) -> tuple[dict[str, Classification], int]:
    """Classifications for these rows, computing and caching the missing ones."""
    rubric = settings.rubric
    classes = store.classifications(rows, rubric.version)
    fresh = []
    for row in rows:
        if row["id"] not in classes:
            classes[row["id"]] = classify_evidence(evidence_from_row(row), rubric)
            fresh.append((row["id"], row["content_hash"], classes[row["id"]]))
    store.save_classifications(fresh, now)
    return classes, len(fresh)


def score_org(store: Store, org: Organisation, settings: Settings, now: dt.datetime) -> ScoreOutcome:
    rows = store.items_for(org.id)
    classes, fresh = classify_rows(store, rows, settings, now)
    evidence = [evidence_from_row(r) for r in rows]
    before = store.latest_score(org.id)
    after = score_organisation(org.id, evidence, classes, store.overrides_for(org.id), settings.rubric, now)
    changes = describe_changes(before, after)
    store.save_score(after, changes)
    return ScoreOutcome(org=org, before=before, after=after, changes=changes, classified=fresh)


def score(settings: Settings, orgs: tuple[Organisation, ...], now: dt.datetime | None = None) -> list[ScoreOutcome]:
    """Score each organisation in its own short store session."""
    now = now or utcnow()
    outcomes = []
    for org in orgs:
        with open_store(settings.db_path) as store:
            store.sync_organisations(settings.organisations, now)
            outcomes.append(score_org(store, org, settings, now))
    return outcomes
