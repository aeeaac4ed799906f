"""The dossier and index view-models, mapped purely from what the application hands over.

`dossier_page` takes an organisation's facts, its latest score and what changed, its stored
evidence with the classifications that score used, its sources, the validators' overrides and the
current time, and returns the page model. It reads no database and asks no registry: every input
is a plain value, so a dossier can be rebuilt and tested from literals.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable

from reports.model import (
    CardRow, CitationView, CriterionCard, DossierPage, EvidenceView, IndexPage, IndexRow, OverrideView, SourceView,
    StepView, UnattributedPost,
)
from reports.snippet import highlight, safe_href
from reports.timeline import build_timeline
from scoring import Agreement, Classification, Evidence, OrgScore, Override, SignalHit

CITES_PER_CARD = 3
ITEMS_NAMED = 3  # a step, or an award it says it holds, names its first few items, linked to their rows


@dataclass(frozen=True)
class OrgFacts:
    id: str
    name: str
    kind: str
    registered: dt.date
    claimed_step: int


@dataclass(frozen=True)
class StoredEvidence:
    """An item as stored: what scoring sees, plus its archive facts."""

    evidence: Evidence
    kind: str  # page, pdf, feed_entry, post
    snapshot_hash: str | None = None
    snapshot_at: dt.datetime | None = None
    gone: bool = False
    # a post by an account neither the organisation's website links to nor a validator confirmed
    unverified_account: bool = False


@dataclass(frozen=True)
class SourceFacts:
    platform: str
    locator: str
    items: int
    last_success: dt.datetime | None
    last_error: str | None
    collectable: bool  # ccqm has a collector for the platform
    refused: int = 0  # URLs not collected on purpose in the last run
    last_status: str | None = None  # of the last run that reached it: ok, partial, failed, skipped, ...


@dataclass(frozen=True)
class CriterionInfo:
    """What the rubric says of a criterion, for the card's heading."""

    label: str
    question: str


def _date(value: dt.datetime | None) -> str:
    return value.strftime("%d %b %Y") if value else "—"


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width].rsplit(" ", 1)[0] + " …"


def _stamp(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def evidence_view(item: StoredEvidence, cls: Classification | None, threshold: float,
                  focus: str | None = None, label_of: dict[str, str] | None = None,
                  registered: dt.date | None = None) -> EvidenceView:
    """One item as the dossier shows it. What is marked in its text is what carried `focus`, or
    with no focus what carried each criterion it is labelled with: an item that evidences nothing
    has nothing marked, so no one mistakes a privacy policy for evidence. An item dated before
    `registered` (the organisation's registration) is flagged: it counts, but a validator may
    judge work done before the journey began differently."""
    ev = item.evidence
    labels = cls.labels(threshold) if cls else []
    spans: list[tuple[int, int]] = []
    if cls is not None:
        for name in [focus] if focus else labels:
            for hit in cls.criteria[name].signals:
                spans += list(hit.spans)
    return EvidenceView(
        item_id=ev.id, title=ev.title, platform=ev.platform, kind=item.kind, url=safe_href(ev.url),
        date=_date(ev.when) if ev.when else f"date unknown (found {_date(ev.first_seen)})", undated=ev.when is None,
        snippet=highlight(ev.body, spans), labels=tuple((label_of or {}).get(n, n) for n in labels),
        snapshot_hash=item.snapshot_hash, snapshot_at=_stamp(item.snapshot_at), gone=item.gone,
        tags_scheme=ev.tags_scheme, unverified_account=item.unverified_account,
        before_registration=bool(registered and ev.when and ev.when.date() < registered))


def source_view(s: SourceFacts) -> SourceView:
    if not s.collectable:
        status, problem = "not collected", f"ccqm has no {s.platform} collector yet"
    elif s.last_status == "skipped":  # a credential the deployment has not set
        status, problem = "not connected", s.last_error
    elif s.last_error:
        status, problem = "failing", s.last_error
    else:
        status, problem = ("ok" if s.last_success else "not collected yet"), None
    return SourceView(platform=s.platform, locator=s.locator, items=s.items, last_success=_stamp(s.last_success),
                      status=status, problem=problem, refused=s.refused)


def _signals(cls: Classification | None, criterion: str) -> tuple[SignalHit, ...]:
    result = cls.criteria.get(criterion) if cls else None
    return result.signals if result else ()


def _weighed_most(cls: Classification | None, criterion: str) -> tuple[str, ...]:
    return tuple(term for hit in _signals(cls, criterion) for term in hit.terms)


def _topic_share(cls: Classification | None, criterion: str) -> float:
    """What the classifier's topic gate left of the item's score for this criterion (1: all of it)."""
    return min((hit.topic for hit in _signals(cls, criterion)), default=1.0)


def dossier_page(org: OrgFacts, score: OrgScore, changes: list[str], items: list[StoredEvidence],
                 classes: dict[str, Classification], sources: list[SourceFacts], overrides: list[Override],
                 criteria: dict[str, CriterionInfo], label_threshold: float, last_harvest: dt.datetime | None,
                 now: dt.datetime, evidence_share: Callable[[float], float | None] = lambda score: None) -> DossierPage:
    """The whole dossier of one organisation. `evidence_share` tells how often, in testing, an item
    the classifier scored so was evidence (`TextModel.evidence_share`), so that each citation can say
    how far to trust it."""
    by_id = {i.evidence.id: i for i in items}
    cards = []
    for crit in score.criteria:
        info = criteria.get(crit.criterion, CriterionInfo(crit.label, ""))
        cites = tuple(CitationView(evidence=evidence_view(by_id[c.item_id], classes.get(c.item_id), label_threshold,
                                                          focus=crit.criterion, registered=org.registered),
                                   item_score=c.item_score, terms=_weighed_most(classes.get(c.item_id), crit.criterion),
                                   topic=_topic_share(classes.get(c.item_id), crit.criterion),
                                   overridden=c.overridden,
                                   evidence_share=None if c.overridden else evidence_share(c.item_score))
                      for c in crit.cited[:CITES_PER_CARD] if c.item_id in by_id)
        cards.append(CriterionCard(key=crit.criterion, label=crit.label, question=info.question, level=crit.level,
                                   score=crit.score, reasons=crit.reasons, citations=cites,
                                   more=max(0, len(crit.cited) - CITES_PER_CARD)))
    label_of = {key: info.label for key, info in criteria.items()}
    table = {i.evidence.id: evidence_view(i, classes.get(i.evidence.id), label_threshold, label_of=label_of,
                                          registered=org.registered)
             for i in items}

    def named(ids: tuple[str, ...]) -> tuple[EvidenceView, ...]:
        return tuple(table[i] for i in ids if i in table)[:ITEMS_NAMED]

    steps = tuple(StepView(number=s.number, name=s.name, phase=s.phase, evidence_count=len(s.evidenced_by),
                           claimed=s.number <= org.claimed_step, items=named(s.evidenced_by)) for s in score.steps)
    labelled = [i for i in items if classes.get(i.evidence.id) and classes[i.evidence.id].labels(label_threshold)]
    months = Counter(i.evidence.when.strftime("%Y-%m") for i in labelled if i.evidence.when)
    undated = sum(1 for i in labelled if not i.evidence.when)
    return DossierPage(
        org_id=org.id, name=org.name, kind=org.kind, registered=org.registered.strftime("%d %b %Y"),
        claimed_step=org.claimed_step, last_harvest=_stamp(last_harvest), rubric_version=score.rubric_version,
        generated_at=_stamp(score.scored_at), award=score.award.level, award_reasons=score.award.reasons,
        blockers=score.award.blockers, cards=tuple(cards), steps=steps, timeline=build_timeline(dict(months), undated),
        sources=tuple(source_view(s) for s in sources), changes=tuple(changes),
        overrides=tuple(OverrideView(item_id=o.item_id, action=o.action, criterion=o.criterion or "", note=o.note,
                                     by=o.by, at=_stamp(o.at), machine=_machine_then(o, label_threshold),
                                     since=_since(o, by_id.get(o.item_id), classes.get(o.item_id), label_threshold))
                        for o in overrides),
        evidence=tuple(table.values()),
        claims=tuple((level, named(ids)) for level, ids in score.claims))


def index_row(org: OrgFacts, score: OrgScore | None, criteria: tuple[str, ...], sources: list[SourceFacts],
              items: int, last_harvest: dt.datetime | None) -> IndexRow:
    problems = tuple(f"{s.platform}: {s.last_error}" for s in sources if s.last_error)
    levels = tuple((c.label, c.level) for c in score.criteria) if score else tuple((c, "none") for c in criteria)
    strength = round(sum(c.score for c in score.criteria) / len(score.criteria), 4) if score and score.criteria else 0.0
    claimed = score.claims[-1][0] if score and score.claims else None  # claims are lowest first
    return IndexRow(org_id=org.id, name=org.name, kind=org.kind, href=f"{org.id}.html" if score else "", levels=levels,
                    award=score.award.level if score else None, last_harvest=_stamp(last_harvest), items=items,
                    problems=problems, strength=strength, claimed=claimed)


AWARD_ORDER = ("gold", "silver", "bronze")


def ranked(rows: list[IndexRow]) -> tuple[IndexRow, ...]:
    """Readiest first: by recommended award, then by the award it says it holds, then by strength of
    evidence, then by name; so an organisation that holds evidence for an award is never listed below
    one that is only starting, nor one that says it holds an award of the scheme (in words the rubric
    reads as held: "we achieved the Silver", not "working towards") below one at the same
    recommendation that says none. A holder's web presence is often thin (one news page); its claim
    is what the scheme's own records can confirm."""
    def order(level: str | None) -> int:
        level = (level or "").lower()
        return AWARD_ORDER.index(level) if level in AWARD_ORDER else len(AWARD_ORDER)

    def key(row: IndexRow):
        return (order(row.award), order(row.claimed), -row.strength, row.name.lower(), row.org_id)
    return tuple(sorted(rows, key=key))


def counted(score: float, threshold: float) -> str:
    """Whether the machine counts an item scored so for a criterion, in a validator's words."""
    return "counted" if score >= threshold else "not counted"


def machine_reading(score: float, threshold: float) -> str:
    """A machine's score of an item for one criterion as a validator reads it: "0.48, not counted"."""
    return f"{score:.2f}, {counted(score, threshold)}"


def _machine_then(o: Override, threshold: float) -> str:
    """The machine's score of a decided item for the criterion decided ("0.48, not counted"), or of
    the criteria it counted when a decision spoke for all of them."""
    scores = dict(o.machine)
    if o.criterion in scores:
        return machine_reading(scores[o.criterion], threshold)
    if o.criterion is None and scores:
        over = [f"{name} {s:.2f}" for name, s in scores.items() if s >= threshold]
        return f"counted for {', '.join(over)}" if over else "counted for none"
    return ""


def _since(o: Override, item: StoredEvidence | None, now: Classification | None, threshold: float) -> str:
    """What has changed since a decision that may leave it stale: the item's text (the decision
    judged other words), or whether the machine counts the item for the criterion decided."""
    if o.action == "note":
        return ""
    if item is not None and o.judged_text and item.evidence.content_hash != o.judged_text:
        return "possibly stale: the item's text has changed since this decision"
    then = dict(o.machine)
    moved = [f"{name} {machine_reading(now.criteria[name].score, threshold)}"
             for name in ([o.criterion] if o.criterion else sorted(then))
             if now is not None and name in then and name in now.criteria
             and (then[name] >= threshold) != (now.criteria[name].score >= threshold)]
    return f"the machine's reading has changed: now {'; '.join(moved)}" if moved else ""


def report_card(agreements: Iterable[Agreement], labels: dict[str, str]) -> tuple[CardRow, ...]:
    """The report card's rows, or none when no decision has a machine's score to set it against."""
    found = [CardRow(criterion=labels.get(a.criterion, a.criterion), decided=a.decided, agreed=a.agreed,
                     dropped=a.dropped, added=a.added) for a in agreements]
    return tuple(found) if any(r.decided for r in found) else ()


def index_page(rows: list[IndexRow], criteria: tuple[str, ...], now: dt.datetime,
               unattributed: list[dict] = (), card: tuple[CardRow, ...] = ()) -> IndexPage:
    """The index; `unattributed` are the scheme's posts by unknown authors (store rows: platform,
    author, url, text, published_at, first_seen), shown so a validator can link their authors;
    `card` is the scorer's report card (`report_card`)."""
    posts = tuple(UnattributedPost(platform=r["platform"], author=r.get("author") or "(author hidden)",
                                   url=safe_href(r.get("url")) or "",
                                   date=_date(r.get("published_at") or r.get("first_seen")),
                                   excerpt=_shorten(r.get("text") or "", 200))
                  for r in unattributed)
    return IndexPage(title="CCQM validation dossiers", generated_at=_stamp(now), criteria=criteria, rows=ranked(rows),
                     unattributed=posts, card=card)
