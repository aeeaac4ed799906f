"""The view-models the templates render: everything already decided, formatted and escaped-ready."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Segment:
    text: str
    mark: bool = False  # a matched signal, shown highlighted


@dataclass(frozen=True)
class EvidenceView:
    item_id: str
    title: str
    platform: str
    kind: str
    url: str | None  # http(s) only; anything else is dropped before it gets here
    date: str
    snippet: tuple[Segment, ...]
    labels: tuple[str, ...]
    snapshot_hash: str | None
    snapshot_at: str | None
    gone: bool = False
    tags_scheme: bool = False
    undated: bool = False  # the item gives no date of its own: it counts, but not for recency or spread
    unverified_account: bool = False  # posted by an account not confirmed as the organisation's own
    before_registration: bool = False  # dated before the organisation registered for the scheme: counted, but flagged

    @property
    def called(self) -> str:
        """What a validator knows the item by: its title, or the kind of post it is."""
        return self.title or f"{self.platform} post"


@dataclass(frozen=True)
class CitationView:
    evidence: EvidenceView
    item_score: float
    terms: tuple[str, ...]  # the words that weighed most in the passage that carried it
    overridden: bool = False
    evidence_share: float | None = None  # how often items scored like this were evidence, in testing
    topic: float = 1.0  # the share of its score the classifier's topic gate left: below 1 when read as off the topic

    @property
    def borderline(self) -> bool:
        """A machine's citation that, scored like this, was more often wrong than right in testing."""
        return not self.overridden and self.evidence_share is not None and self.evidence_share < 0.5


@dataclass(frozen=True)
class CriterionCard:
    key: str
    label: str
    question: str
    level: str
    score: float
    reasons: tuple[str, ...]
    citations: tuple[CitationView, ...]
    more: int  # cited items not shown on the card


@dataclass(frozen=True)
class StepView:
    number: int
    name: str
    phase: str
    evidence_count: int
    claimed: bool  # at or below the step the organisation says it has reached
    items: tuple[EvidenceView, ...] = ()  # the first items that evidence it (rows of the evidence table)


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    count: int


@dataclass(frozen=True)
class TimelineView:
    width: int
    height: int
    bars: tuple[Bar, ...]
    axis: tuple[tuple[float, str], ...]
    description: str


@dataclass(frozen=True)
class SourceView:
    platform: str
    locator: str
    items: int
    last_success: str
    status: str
    problem: str | None
    refused: int = 0  # URLs not collected on purpose in the last run: coverage, not absence


@dataclass(frozen=True)
class OverrideView:
    item_id: str
    action: str
    criterion: str
    note: str
    by: str
    at: str
    machine: str = ""  # what the machine had scored the item for that criterion when decided, if known
    since: str = ""  # what has changed since that may leave the decision stale: the item's text, the machine's count


@dataclass(frozen=True)
class DossierPage:
    org_id: str
    name: str
    kind: str
    registered: str
    claimed_step: int
    last_harvest: str
    rubric_version: str
    generated_at: str
    award: str | None
    award_reasons: tuple[str, ...]
    blockers: tuple[str, ...]
    cards: tuple[CriterionCard, ...]
    steps: tuple[StepView, ...]
    timeline: TimelineView
    sources: tuple[SourceView, ...]
    changes: tuple[str, ...]
    overrides: tuple[OverrideView, ...]
    evidence: tuple[EvidenceView, ...]
    claims: tuple[tuple[str, tuple[EvidenceView, ...]], ...] = ()  # (award it says it holds, items saying so)


@dataclass(frozen=True)
class IndexRow:
    org_id: str
    name: str
    kind: str
    href: str  # the dossier's file name; empty until the organisation is scored
    levels: tuple[tuple[str, str], ...]  # (criterion label, level)
    award: str | None
    last_harvest: str
    items: int
    problems: tuple[str, ...]
    strength: float = 0.0  # the mean of its five criterion scores, 0..1: how much evidence, for ranking
    claimed: str | None = None  # the highest award of the scheme it says it holds (a validator confirms it)


@dataclass(frozen=True)
class UnattributedPost:
    """A post that mentions or tags the scheme, by an author no organisation owns yet."""

    platform: str
    author: str  # the handle as the platform shows it, or "(author hidden)"
    url: str  # empty when the post has no link we may show
    date: str
    excerpt: str


@dataclass(frozen=True)
class CardRow:
    """One criterion of the scorer's report card: the validators' decisions against the machine."""

    criterion: str  # its label
    decided: int
    agreed: int
    dropped: int  # counted by the machine, excluded by a validator
    added: int  # missed by the machine, included by a validator

    @property
    def agreed_share(self) -> str:
        return f"{self.agreed / self.decided:.0%}" if self.decided else "—"


@dataclass(frozen=True)
class IndexPage:
    title: str
    generated_at: str
    criteria: tuple[str, ...]
    rows: tuple[IndexRow, ...]
    unattributed: tuple[UnattributedPost, ...] = ()
    card: tuple[CardRow, ...] = ()  # empty until a validator has decided on a scored item
