"""The plain dataclasses scoring takes and returns. Callers map their own rows onto `Evidence`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from functools import cached_property, lru_cache

CRITERIA = ("self_reflection", "quiz_outcomes", "goals_set", "actions_taken", "progress_shared")
LEVELS = ("none", "bronze", "silver", "gold")  # a criterion's level, lowest first
AWARDS = ("Bronze", "Silver", "Gold")  # the scheme's award levels, lowest first


@dataclass(frozen=True)
class Evidence:
    """One harvested item as scoring sees it."""

    id: str
    org_id: str
    platform: str  # website, feed, mastodon, bluesky, ...
    title: str
    text: str
    url: str | None = None
    published: dt.datetime | None = None
    first_seen: dt.datetime | None = None
    tags_scheme: bool = False
    content_hash: str = ""

    @property
    def when(self) -> dt.datetime | None:
        """The date the item itself gives, or None: when ccqm first saw it (`first_seen`) is never
        passed off as when it was published. Undated evidence counts for its criterion, not for
        recency or spread over months."""
        return self.published

    @cached_property
    def body(self) -> str:
        """The text that is classified; signal spans index into it. (Built once: the roll-up reads
        it for every criterion, and a string made afresh is hashed afresh.)"""
        return f"{self.title}\n{self.text}" if self.title else self.text


@dataclass(frozen=True)
class SignalHit:
    """A rubric signal that fired, where, and why it matters."""

    name: str
    weight: float
    explain: str
    spans: tuple[tuple[int, int], ...]
    quote: str  # the passage (or the first matched text)
    terms: tuple[str, ...] = ()  # the words that weighed most
    topic: float = 1.0  # the share of its score the topic gate left it: below 1 when read as off the topic


@dataclass(frozen=True)
class CriterionResult:
    score: float  # in [0, 1]
    signals: tuple[SignalHit, ...] = ()


@dataclass(frozen=True)
class Classification:
    """What one text evidences: a score per criterion, the CCQM steps and guiding areas."""

    criteria: dict[str, CriterionResult]
    steps: tuple[int, ...] = ()
    areas: tuple[str, ...] = ()
    on_topic: bool = True
    rubric_version: str = ""
    claims: tuple[str, ...] = ()  # awards of the scheme the text says the organisation holds

    def labels(self, threshold: float) -> list[str]:
        return [name for name, res in self.criteria.items() if res.score >= threshold]


@dataclass(frozen=True)
class Override:
    """A validator's decision on one item; it outlives every rescoring."""

    item_id: str
    action: str  # "include", "exclude" or "note"
    criterion: str | None
    note: str
    by: str
    at: dt.datetime
    id: str = ""
    machine: tuple[tuple[str, float], ...] = ()  # the item's score per criterion when decided, if it was scored
    machine_scorer: str = ""  # the rubric and classifier that gave those scores
    judged_text: str = ""  # the content hash of the item's text when decided: a change since may make it stale


@dataclass(frozen=True)
class Citation:
    """An item counted towards a criterion, with what it contributed."""

    item_id: str
    item_score: float
    contribution: float
    signals: tuple[str, ...]
    overridden: bool = False


@dataclass(frozen=True)
class CriterionScore:
    criterion: str
    label: str
    score: float
    level: str  # one of LEVELS
    reasons: tuple[str, ...]
    cited: tuple[Citation, ...] = ()
    excluded: tuple[str, ...] = ()  # item ids a validator excluded


@dataclass(frozen=True)
class StepStatus:
    number: int
    name: str
    phase: str
    evidenced_by: tuple[str, ...]  # item ids


@dataclass(frozen=True)
class Award:
    level: str | None  # one of AWARDS, or None
    reasons: tuple[str, ...]
    blockers: tuple[str, ...]  # what stands between this and the next award


@dataclass(frozen=True)
class OrgScore:
    org_id: str
    rubric_version: str
    scored_at: dt.datetime
    criteria: tuple[CriterionScore, ...]
    steps: tuple[StepStatus, ...]
    award: Award
    notes: tuple[Override, ...] = field(default=())
    claims: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (award it says it holds, the items that say so)

    def criterion(self, name: str) -> CriterionScore:
        return next(c for c in self.criteria if c.criterion == name)


_SCALARS = frozenset({str, int, float, bool, type(None)})


@lru_cache(maxsize=None)
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(kind))


def plain(value):
    """`dataclasses.asdict` without its deep copies (a score has thousands of parts, and they are
    immutable): dataclasses as dicts, tuples and lists as lists, anything else as it is. (Written
    for a rescore's thousands of citations: the commonest kinds are tested first.)"""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is tuple or kind is list:
        return [plain(v) for v in value]
    if hasattr(kind, "__dataclass_fields__"):
        return {name: plain(getattr(value, name)) for name in _field_names(kind)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def classification_to_dict(c: Classification) -> dict:
    """The same dict as `dataclasses.asdict`, built directly (it is written once per item)."""
    return {"criteria": {name: {"score": r.score, "signals": [
                {"name": h.name, "weight": h.weight, "explain": h.explain, "spans": [list(s) for s in h.spans],
                 "quote": h.quote, "terms": list(h.terms), **({"topic": h.topic} if h.topic < 1 else {})}
                for h in r.signals]}
                         for name, r in c.criteria.items()},
            "steps": list(c.steps), "areas": list(c.areas), "on_topic": c.on_topic, "rubric_version": c.rubric_version,
            "claims": list(c.claims)}


def classification_from_dict(data: dict) -> Classification:
    """Rebuild a Classification from `dataclasses.asdict` output (as stored as JSON)."""
    criteria = {name: CriterionResult(score=c["score"], signals=tuple(
        SignalHit(name=s["name"], weight=s["weight"], explain=s["explain"],
                  spans=tuple(map(tuple, s["spans"])), quote=s["quote"], terms=tuple(s["terms"]),
                  topic=s.get("topic", 1.0))
        for s in c["signals"]))
        for name, c in data["criteria"].items()}
    return Classification(criteria=criteria, steps=tuple(data["steps"]), areas=tuple(data["areas"]),
                          on_topic=data["on_topic"], rubric_version=data["rubric_version"],
                          claims=tuple(data["claims"]))


def org_score_from_dict(data: dict) -> OrgScore:
    """Rebuild an OrgScore from `dataclasses.asdict` output (times as ISO strings)."""
    criteria = tuple(CriterionScore(
        criterion=c["criterion"], label=c["label"], score=c["score"], level=c["level"],
        reasons=tuple(c["reasons"]), excluded=tuple(c["excluded"]),
        cited=tuple(Citation(item_id=x["item_id"], item_score=x["item_score"], contribution=x["contribution"],
                             signals=tuple(x["signals"]), overridden=x["overridden"]) for x in c["cited"]))
        for c in data["criteria"])
    steps = tuple(StepStatus(number=s["number"], name=s["name"], phase=s["phase"],
                             evidenced_by=tuple(s["evidenced_by"])) for s in data["steps"])
    a = data["award"]
    notes = tuple(Override(item_id=o["item_id"], action=o["action"], criterion=o["criterion"], note=o["note"],
                           by=o["by"], at=_time(o["at"]), id=o["id"],
                           machine=tuple((c, s) for c, s in o.get("machine", ())),
                           machine_scorer=o.get("machine_scorer", ""), judged_text=o.get("judged_text", ""))
                  for o in data["notes"])
    return OrgScore(org_id=data["org_id"], rubric_version=data["rubric_version"], scored_at=_time(data["scored_at"]),
                    criteria=criteria, steps=steps, notes=notes,
                    claims=tuple((level, tuple(ids)) for level, ids in data["claims"]),
                    award=Award(level=a["level"], reasons=tuple(a["reasons"]), blockers=tuple(a["blockers"])))
