"""Dossiers: read an organisation's rows and latest score, build the view-models, write the HTML.

This is the only place that knows both the store's rows and the reports' view-models; `reports`
itself renders what it is given and never queries anything.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from harvester.assess import classify_rows
from harvester.collectors import collector_for
from harvester.items import utcnow
from harvester.registry import Organisation
from harvester.settings import Settings
from harvester.store import Store, open_store
from reports import (
    CitationView, CriterionCard, DossierPage, EvidenceView, IndexPage, IndexRow, OverrideView, SourceView,
    StepView, build_timeline, highlight, render_dossier, render_index, safe_href,
)
from scoring import CRITERIA, Classification, OrgScore

CITES_PER_CARD = 3


def _date(value: dt.datetime | None) -> str:
    return value.strftime("%d %b %Y") if value else "—"


def _stamp(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _evidence_view(row: dict, cls: Classification | None, threshold: float, focus: str | None = None) -> EvidenceView:
    body = f"{row['title']}\n{row['text']}" if row["title"] else (row["text"] or "")
    spans: list[tuple[int, int]] = []
    if cls is not None:
        names = [focus] if focus else list(cls.criteria)
        for name in names:
            for hit in cls.criteria[name].signals:
                spans += list(hit.spans)
    return EvidenceView(
        item_id=row["id"], title=row["title"] or "", platform=row["platform"], kind=row["kind"],
        url=safe_href(row["url"]), date=_date(row["published_at"] or row["first_seen"]),
        snippet=highlight(body, spans), labels=tuple(cls.labels(threshold)) if cls else (),
        snapshot_hash=row.get("snapshot_hash"), snapshot_at=_stamp(row.get("snapshot_at")),
        gone=row["gone_at"] is not None, tags_scheme=bool(row["tags_scheme"]))


def build_dossier(store: Store, org: Organisation, score: OrgScore, changes: list[str], settings: Settings,
                  now: dt.datetime) -> DossierPage:
    rubric = settings.rubric
    rows = store.items_for(org.id)
    by_id = {r["id"]: r for r in rows}
    classes, _ = classify_rows(store, rows, settings, now)
    cards = []
    for crit in score.criteria:
        rule = rubric.criterion(crit.criterion)
        cites = tuple(CitationView(evidence=_evidence_view(by_id[c.item_id], classes.get(c.item_id), rubric.label_threshold,
                                                          focus=crit.criterion),
                                   item_score=c.item_score, signals=c.signals, overridden=c.overridden)
                      for c in crit.cited[:CITES_PER_CARD] if c.item_id in by_id)
        cards.append(CriterionCard(key=crit.criterion, label=crit.label, question=rule.question, level=crit.level,
                                   score=crit.score, reasons=crit.reasons, citations=cites,
                                   more=max(0, len(crit.cited) - CITES_PER_CARD)))
    steps = tuple(StepView(number=s.number, name=s.name, phase=s.phase, evidence_count=len(s.evidenced_by),
                           claimed=s.number <= org.step) for s in score.steps)
    months = Counter((r["published_at"] or r["first_seen"]).strftime("%Y-%m") for r in rows
                     if classes.get(r["id"]) and classes[r["id"]].labels(rubric.label_threshold))
    sources = tuple(_source_view(s) for s in store.source_status(org.id))
    overrides = tuple(OverrideView(item_id=o.item_id, action=o.action, criterion=o.criterion or "", note=o.note,
                                   by=o.by, at=_stamp(o.at)) for o in store.overrides_for(org.id))
    return DossierPage(
        org_id=org.id, name=org.name, kind=org.kind, registered=org.registered.strftime("%d %b %Y"),
        claimed_step=org.step, last_harvest=_stamp(store.last_harvest(org.id)), rubric_version=score.rubric_version,
        generated_at=_stamp(score.scored_at), award=score.award.level, award_reasons=score.award.reasons,
        blockers=score.award.blockers, cards=tuple(cards), steps=steps, timeline=build_timeline(dict(months)),
        sources=sources, changes=tuple(changes), overrides=overrides,
        evidence=tuple(_evidence_view(r, classes.get(r["id"]), rubric.label_threshold) for r in rows))


def _source_view(s: dict) -> SourceView:
    if collector_for(s["platform"]) is None:
        status, problem = "not collected", f"ccqm has no {s['platform']} collector yet"
    elif s["last_error"]:
        status, problem = "failing", s["last_error"]
    else:
        status, problem = ("ok" if s["last_success"] else "not collected yet"), None
    return SourceView(platform=s["platform"], locator=s["locator"], items=s["items_total"] or 0,
                      last_success=_stamp(s["last_success"]), status=status, problem=problem)


def _index_row(store: Store, org: Organisation, score: OrgScore | None) -> IndexRow:
    problems = tuple(f"{s['platform']}: {s['last_error']}" for s in store.source_status(org.id) if s["last_error"])
    levels = tuple((c.label, c.level) for c in score.criteria) if score else tuple((c, "none") for c in CRITERIA)
    return IndexRow(org_id=org.id, name=org.name, kind=org.kind, href=f"{org.id}.html" if score else "", levels=levels,
                    award=score.award.level if score else None, last_harvest=_stamp(store.last_harvest(org.id)),
                    items=store.item_count(org.id), problems=problems)


def write_dossiers(settings: Settings, orgs: tuple[Organisation, ...], out_dir: Path | None = None,
                   changes: dict[str, list[str]] | None = None, now: dt.datetime | None = None) -> Path:
    """Write one dossier per organisation scored so far, and the index of all; returns the index path."""
    now = now or utcnow()
    out_dir = Path(out_dir or settings.dossier_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    changes = changes or {}
    chosen = {o.id for o in orgs}
    rows = []
    with open_store(settings.db_path) as store:
        for org in settings.organisations:
            score = store.latest_score(org.id)
            rows.append(_index_row(store, org, score))
            if org.id in chosen and score is not None:
                page = build_dossier(store, org, score, changes.get(org.id, []), settings, now)
                _write(out_dir / f"{org.id}.html", render_dossier(page))
    labels = tuple(settings.rubric.criterion(c).label for c in CRITERIA)
    index = IndexPage(title="CCQM validation dossiers", generated_at=_stamp(now), criteria=labels, rows=tuple(rows))
    path = out_dir / "index.html"
    _write(path, render_index(index))
    return path


def _write(path: Path, html: str) -> None:
    """Write atomically, so a reader never opens half a dossier."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
