"""What changed between two scorings of one organisation, in sentences a validator reads."""

from __future__ import annotations

from scoring.model import OrgScore


def describe_changes(before: OrgScore | None, after: OrgScore) -> list[str]:
    """Levels moved, award moved, items newly cited or dropped; empty when nothing changed."""
    if before is None:
        return ["First scoring of this organisation."]
    lines: list[str] = []
    if before.award.level != after.award.level:
        lines.append(f"Recommended award: {before.award.level or 'none'} -> {after.award.level or 'none'}")
    if before.rubric_version != after.rubric_version:
        lines.append(f"Rubric: {before.rubric_version} -> {after.rubric_version}")
    old = {c.criterion: c for c in before.criteria}
    for new in after.criteria:
        prev = old.get(new.criterion)
        if prev is None:
            continue
        if prev.level != new.level or abs(prev.score - new.score) >= 0.005:
            lines.append(f"{new.label}: {prev.level} ({prev.score:.2f}) -> {new.level} ({new.score:.2f})")
        was = {c.item_id for c in prev.cited}
        now = {c.item_id for c in new.cited}
        for item in sorted(now - was):
            lines.append(f"{new.label}: newly cited {item}")
        for item in sorted(was - now):
            lines.append(f"{new.label}: no longer cited {item}")
    return lines
