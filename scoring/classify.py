"""Classify one text against the rubric: a score per criterion, with the signals that fired.

An item's score for a criterion is the noisy-OR of the weights of its distinct signals
(1 - prod(1 - w)), so two independent hints count more than one, and no pile of weak hints
reaches certainty. A text that never touches the scheme's topic (cohesion, equality, inclusion,
CCQM, ...) keeps only `off_topic_factor` of each score: a bakery's customer survey is not
evidence of quiz outcomes about cultural cohesion.
"""

from __future__ import annotations

from scoring.model import Classification, CriterionResult, Evidence, SignalHit
from scoring.rubric import Rubric, Signal


def _hit(signal: Signal, text: str) -> SignalHit | None:
    spans: list[tuple[int, int]] = []
    for pattern in signal.patterns:
        spans += [m.span() for m in pattern.finditer(text) if m.end() > m.start()]
    if not spans:
        return None
    spans.sort()
    first = spans[0]
    return SignalHit(name=signal.name, weight=signal.weight, explain=signal.explain,
                     spans=tuple(spans[:20]), quote=text[first[0]:first[1]])


def _noisy_or(weights: list[float]) -> float:
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return 1.0 - miss


def classify_text(text: str, rubric: Rubric) -> Classification:
    """Score `text` on every criterion; spans index into `text`."""
    on_topic = any(p.search(text) for p in rubric.topic)
    factor = 1.0 if on_topic else rubric.off_topic_factor
    criteria: dict[str, CriterionResult] = {}
    for rule in rubric.criteria:
        hits = [h for h in (_hit(s, text) for s in rule.signals) if h]
        if rule.requires and not any(h.name in rule.requires for h in hits):
            hits = []
        score = round(_noisy_or([h.weight for h in hits]) * factor, 4)
        criteria[rule.name] = CriterionResult(score=score, signals=tuple(hits))
    steps = tuple(int(t.key) for t in rubric.steps if on_topic and any(p.search(text) for p in t.patterns))
    areas = tuple(t.key for t in rubric.areas if on_topic and any(p.search(text) for p in t.patterns))
    return Classification(criteria=criteria, steps=steps, areas=areas, on_topic=on_topic,
                          rubric_version=rubric.version)


def classify_evidence(item: Evidence, rubric: Rubric) -> Classification:
    """Classify an item's title and text together (see `Evidence.body`)."""
    return classify_text(item.body, rubric)
