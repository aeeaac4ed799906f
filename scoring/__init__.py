"""Pure scoring: evidence items + a rubric + validators' overrides -> classifications and scores.

Nothing here touches the network, the database, the filesystem or the clock: callers pass the
rubric as parsed data and `now` as a value, so every result can be recomputed and explained.
"""

from scoring.classify import classify_text, classify_evidence
from scoring.model import (
    CRITERIA, LEVELS, Award, Citation, Classification, CriterionResult, CriterionScore, Evidence,
    OrgScore, Override, SignalHit, StepStatus,
)
from scoring.rubric import Rubric, RubricError, parse_rubric
from scoring.score import score_organisation
from scoring.changes import describe_changes

__all__ = [
    "CRITERIA", "LEVELS", "Award", "Citation", "Classification", "CriterionResult", "CriterionScore",
    "Evidence", "OrgScore", "Override", "SignalHit", "StepStatus", "Rubric", "RubricError",
    "parse_rubric", "classify_text", "classify_evidence", "score_organisation", "describe_changes",
]
