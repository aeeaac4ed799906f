"""Dossiers: read what the store holds, hand it to `reports` as plain values, write the HTML.

It only reads. The classifications shown are those the latest score was computed with (stored by
`ccqm score`); an item harvested since shows no labels until the next scoring. The database is
opened read-only and never created, migrated or changed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Callable

from harvester.app.assess import evidence_from_row
from harvester.collectors import collector_for
from harvester.config.registry import Organisation
from harvester.config.scheme import normal_handle
from harvester.config.settings import Settings
from harvester.items import utcnow
from harvester.store.db import Store, open_store
from reports import render_dossier, render_index
from reports.build import (
    CriterionInfo, OrgFacts, SourceFacts, StoredEvidence, dossier_page, index_page, index_row, report_card,
)
from scoring import CRITERIA, agreement


def org_facts(org: Organisation) -> OrgFacts:
    return OrgFacts(id=org.id, name=org.name, kind=org.kind, registered=org.registered, claimed_step=org.step)


def stored_evidence(row: dict, verified: set[tuple[str, str]] | None = None) -> StoredEvidence:
    """`verified`: the (platform, handle) pairs confirmed as the organisation's own; a post by any
    other account is marked on the dossier."""
    unverified = (verified is not None and row["kind"] == "post" and
                  (row["platform"], normal_handle(row["platform"], row.get("author"), row.get("url"))) not in verified)
    return StoredEvidence(evidence=evidence_from_row(row), kind=row["kind"], snapshot_hash=row.get("snapshot_hash"),
                          snapshot_at=row.get("snapshot_at"), gone=row["gone_at"] is not None,
                          unverified_account=unverified)


def source_facts(store: Store, org_id: str) -> list[SourceFacts]:
    return [SourceFacts(platform=s["platform"], locator=s["locator"], items=s["items_total"] or 0,
                        last_success=s["last_success"], last_error=s["last_error"],
                        collectable=collector_for(s["platform"]) is not None, refused=s["refused"] or 0,
                        last_status=s["last_status"])
            for s in store.source_status(org_id)]


def _shares_of(settings: Settings, score) -> Callable[[float], float | None]:
    """The shipped model's figures of how often a score was right, for a score it made: a score
    made by an earlier model or rubric says nothing of them."""
    if score.rubric_version == settings.scorer_key:
        return settings.model.evidence_share
    return lambda item_score: None


def write_dossiers(settings: Settings, orgs: tuple[Organisation, ...], out_dir: Path | None = None,
                   now: dt.datetime | None = None) -> Path:
    """Write one dossier per chosen organisation scored so far, and the index of all; returns the
    index path."""
    now = now or utcnow()
    out_dir = Path(out_dir or settings.dossier_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rubric = settings.rubric
    infos = {c.name: CriterionInfo(c.label, c.question) for c in rubric.criteria}
    labels = tuple(rubric.criterion(c).label for c in CRITERIA)
    chosen = {o.id for o in orgs}
    rows, decided = [], []
    with open_store(settings.db_path, read_only=True) as store:
        for org in settings.organisations:
            overrides = store.overrides_for(org.id)
            decided += overrides
            found = store.latest_score_and_changes(org.id)
            score, changes = found if found else (None, [])
            sources = source_facts(store, org.id)
            last = store.last_harvest(org.id)
            rows.append(index_row(org_facts(org), score, labels, sources, store.item_count(org.id), last))
            if org.id in chosen and score is not None:
                item_rows = store.items_for(org.id)
                classes = store.classifications(item_rows, score.rubric_version)
                verified = store.verified_handles(org.id)
                page = dossier_page(org_facts(org), score, changes, [stored_evidence(r, verified) for r in item_rows],
                                    classes,
                                    sources, overrides, infos, rubric.label_threshold, last, now,
                                    evidence_share=_shares_of(settings, score))
                _write(out_dir / f"{org.id}.html", render_dossier(page))
        unattributed = store.unattributed()
    path = out_dir / "index.html"
    card = report_card(agreement(decided, rubric.label_threshold), dict(zip(CRITERIA, labels)))
    _write(path, render_index(index_page(rows, labels, now, unattributed, card)))
    return path


def _write(path: Path, html: str) -> None:
    """Write atomically, so a reader never opens half a dossier."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
