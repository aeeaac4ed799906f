"""`ccqm classify`: JSONL in, JSONL out, one line per line, in input order.

Input lines are `{"id": ..., "text": ...}`; output lines are
`{"id", "labels": [...], "criteria": {name: {"score", "signals": [...]}}}`. A malformed line is an
error naming the input and line number; nothing is printed for lines after it.
"""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from harvester.errors import ConfigError
from scoring import Rubric, classify_text


def classify_record(record: dict, rubric: Rubric) -> dict:
    result = classify_text(record["text"], rubric)
    return {
        "id": record["id"],
        "labels": result.labels(rubric.label_threshold),
        "criteria": {name: {"score": res.score,
                            "signals": [{"name": h.name, "weight": h.weight, "text": h.quote,
                                         "spans": [list(s) for s in h.spans]} for h in res.signals]}
                     for name, res in result.criteria.items()},
        "steps": list(result.steps),
        "areas": list(result.areas),
    }


def classify_lines(lines: Iterable[str], rubric: Rubric, *, source: str = "-") -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON ({exc.msg})", file=source, field=f"line {number}") from None
        if not isinstance(record, dict) or "id" not in record or not isinstance(record.get("text"), str):
            raise ConfigError('expected {"id": ..., "text": "..."}', file=source, field=f"line {number}")
        yield json.dumps(classify_record(record, rubric), ensure_ascii=False)
