"""`ccqm classify`: JSONL in, JSONL out, one line per line, in input order.

Input lines are `{"id": ..., "text": ...}`; output lines are
`{"id", "labels": [...], "criteria": {name: {"score", "evidence_share", "signals": [...]}}, "steps", "areas",
"claims", "model"}`; each criterion's one signal is the passage that carried it (`text`, `spans`) and
the `terms` that weighed most there; `evidence_share` is how often, in the classifier's
cross-validation, a criterion scored so was evidence (null below the threshold).
A line that cannot be read (invalid UTF-8, not JSON, nested too deep, the wrong shape) is
reported as an `InputError` naming its line number, in its place; the lines around it are still
classified.
"""

from __future__ import annotations

import json
from typing import BinaryIO, Iterator

from harvester.errors import InputError
from scoring import Rubric, classify_text
from scoring.learned import TextModel


def classify_record(record: dict, rubric: Rubric, model: TextModel) -> dict:
    result = classify_text(record["text"], rubric, model)
    return {
        "id": record["id"],
        "labels": result.labels(rubric.label_threshold),
        "criteria": {name: {"score": res.score, "evidence_share": model.evidence_share(res.score),
                            "signals": [{"name": h.name, "weight": h.weight, "text": h.quote,
                                         "spans": [list(s) for s in h.spans], "terms": list(h.terms)}
                                        for h in res.signals]}
                     for name, res in result.criteria.items()},
        "steps": list(result.steps),
        "areas": list(result.areas),
        "claims": list(result.claims),
        "model": result.rubric_version,
    }


def read_record(raw: bytes, *, source: str, number: int) -> dict:
    """One input line as a record, or an InputError that says what is wrong with it."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start + 1})", source=source, line=number) from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg})", source=source, line=number) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", source=source, line=number) from None
    if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("text"), str):
        raise InputError('expected {"id": ..., "text": "..."}', source=source, line=number)
    if not isinstance(record["id"], (str, int)):
        raise InputError("id must be a string or a number", source=source, line=number)
    return record


def classify_stream(lines: BinaryIO, rubric: Rubric, model: TextModel, *,
                    source: str = "-") -> Iterator[str | InputError]:
    """Each non-blank input line's output line, or the InputError that stands in its place."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = read_record(raw, source=source, number=number)
        except InputError as exc:
            yield exc
            continue
        yield json.dumps(classify_record(record, rubric, model), ensure_ascii=False)
