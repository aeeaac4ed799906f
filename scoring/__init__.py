"""Pure scoring: evidence items + a rubric + validators' overrides -> classifications and scores.

Nothing here touches the network, the database, the filesystem or the clock: callers pass the
rubric as parsed data and `now` as a value, so every result can be recomputed and explained.
"""

from scoring.model import (
    CRITERIA, LEVELS, Award, Citation, Classification, CriterionResult, CriterionScore, Evidence,
    OrgScore, Override, SignalHit, StepStatus,
)
from scoring.rubric import Rubric, RubricError, parse_rubric

# The arithmetic (numpy) loads on first use: a harvest reads the rubric but never classifies.
_LAZY = {"classify_text": "scoring.classify", "classify_evidence": "scoring.classify",
         "score_organisation": "scoring.score", "decisions": "scoring.score",
         "agreement": "scoring.report_card", "Agreement": "scoring.report_card", "describe_changes": "scoring.changes"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")


__all__ = [
    "CRITERIA", "LEVELS", "Award", "Citation", "Classification", "CriterionResult", "CriterionScore",
    "Evidence", "OrgScore", "Override", "SignalHit", "StepStatus", "Rubric", "RubricError",
    "parse_rubric", "classify_text", "classify_evidence", "score_organisation", "decisions", "agreement", "Agreement", "describe_changes",
]
