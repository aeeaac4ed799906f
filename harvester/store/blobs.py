"""Results kept as JSON, each in a versioned envelope, so that renaming a field never breaks the
rows written before it: `{"format": KIND, "v": N, "data": {...}}`.

Loading upgrades a blob step by step from the version it was written in to the current one, then
rebuilds scoring's dataclass. Rows written before envelopes existed are version 0. A blob newer
than this code is refused rather than guessed at.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from scoring.model import (
    Classification, OrgScore, classification_from_dict, classification_to_dict, org_score_from_dict, plain,
)

# For each kind: the current version and the upgrade from each older version to the next.
def _signals_get_terms(data: dict) -> dict:
    """v2: each signal names the terms that weighed most (none for the rubric's pattern signals)."""
    for criterion in data["criteria"].values():
        for signal in criterion["signals"]:
            signal.setdefault("terms", [])
    return data


def _claims_recorded(data: dict) -> dict:
    """classification v3, score v2: the awards of the scheme the organisation says it holds (none
    recorded before)."""
    data.setdefault("claims", [])
    return data


CURRENT = {"classification": 3, "score": 2}
UPGRADES: dict[str, dict[int, Callable[[dict], dict]]] = {
    "classification": {0: lambda d: d, 1: _signals_get_terms, 2: _claims_recorded},  # v1 put v0's fields, unchanged, in the envelope
    "score": {0: lambda d: d, 1: _claims_recorded},
}
BUILD: dict[str, Callable[[dict], Any]] = {"classification": classification_from_dict, "score": org_score_from_dict}
FLATTEN: dict[str, Callable[[Any], dict]] = {"classification": classification_to_dict, "score": plain}


class BlobError(ValueError):
    """A stored blob this code cannot read (newer than it, or not a blob at all)."""


def dump(kind: str, value: Classification | OrgScore) -> str:
    return json.dumps({"format": kind, "v": CURRENT[kind], "data": FLATTEN[kind](value)}, default=str,
                      ensure_ascii=False)


def upgrade(kind: str, blob: dict) -> dict:
    """The blob's data at the current version."""
    if "format" in blob and "v" in blob:
        version, data = blob["v"], blob["data"]
        if blob["format"] != kind:
            raise BlobError(f"expected a {kind} blob, found {blob['format']!r}")
    else:
        version, data = 0, blob
    if not isinstance(version, int) or version > CURRENT[kind]:
        raise BlobError(f"{kind} blob v{version} is newer than this ccqm (v{CURRENT[kind]}); upgrade ccqm")
    for step in range(version, CURRENT[kind]):
        data = UPGRADES[kind][step](data)
    return data


def load(kind: str, text: str | dict):
    blob = json.loads(text) if isinstance(text, str) else text
    return BUILD[kind](upgrade(kind, blob))
