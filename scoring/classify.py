"""Classify one text: a score per criterion from the learned model, the passage that carried it
(quoted) and the sentences in it that weighed most (as spans: the dossier marks them), the CCQM
steps and guiding areas it speaks to.

The label decision is the model's (`scoring.learned`): it measured best on real text. The rubric
keeps what the model does not decide: the topic test, the steps and the guiding areas, and the
threshold at which a score is a label. A step is evidenced by a text labelled with one of the
step's criteria (self-evaluation by self-reflection or asking people, publishing by goals, and so
on), by matching one of its patterns (a pledge, a sign-up), or by an award of the scheme the text
says the organisation holds (which evidences that award's own steps), and only when the text is on
the scheme's topic. The patterns of a step that has criteria count only in a text that evidences
some criterion: "we have put in place security measures" in a privacy policy improves nothing. So
do the guiding areas: they say where evidence lies, and a text that evidences nothing has none.
"""

from __future__ import annotations

from scoring.learned import TextModel, judge
from scoring.model import Classification, CriterionResult, Evidence, SignalHit
from scoring.rubric import Rubric, any_of

QUOTE_CHARS = 300


def scorer_key(rubric: Rubric, model: TextModel) -> str:
    """What a classification depends on besides the text: the rubric's and the model's versions."""
    return f"{rubric.version}+{model.key}"


def classify_text(text: str, rubric: Rubric, model: TextModel) -> Classification:
    """Score `text` on every criterion; spans index into `text`."""
    lowered = text.lower()  # the rubric's patterns match case-insensitively: lower the text once
    on_topic = any_of(rubric.topic).search(text, lowered)
    factor = 1.0 if on_topic else rubric.off_topic_factor
    criteria: dict[str, CriterionResult] = {}
    for name, verdict in judge(text, model).items():
        score = round(verdict.score * factor, 4)
        start, end = verdict.span
        words = ", ".join(verdict.terms) or "no single term"
        off = f"; read as off the scheme's topic, it keeps {verdict.topic:.0%} of its score" if verdict.topic < 1 else ""
        hit = SignalHit(name="passage", weight=score, explain=f"weighed most: {words}{off}",
                        spans=verdict.sentences or (verdict.span,), quote=text[start:end][:QUOTE_CHARS],
                        terms=verdict.terms, topic=verdict.topic)
        criteria[name] = CriterionResult(score=score, signals=(hit,))
    labels = {name for name, res in criteria.items() if res.score >= rubric.label_threshold}
    steps = {int(t.key) for t in rubric.steps
             if on_topic and (labels & set(t.criteria) or (labels or not t.criteria) and t.matcher.search(text, lowered))}
    claims = rubric.claimed_levels(text, lowered) if on_topic else ()
    steps |= rubric.award_steps(claims)
    areas = tuple(t.key for t in rubric.areas if on_topic and labels and t.matcher.search(text, lowered))
    return Classification(criteria=criteria, steps=tuple(sorted(steps)), areas=areas, on_topic=on_topic,
                          rubric_version=scorer_key(rubric, model), claims=claims)


def classify_evidence(item: Evidence, rubric: Rubric, model: TextModel) -> Classification:
    """Classify an item's title and text together (see `Evidence.body`)."""
    return classify_text(item.body, rubric, model)
