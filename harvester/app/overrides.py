"""Validators' decisions on single items: checked, then stored forever with who, when and why."""

from __future__ import annotations

from harvester.errors import UsageError
from harvester.items import strip_controls, utcnow
from harvester.config.settings import Settings
from harvester.store.db import open_store
from scoring import CRITERIA, Override


def add_override(settings: Settings, org_id: str, item_ref: str, *, include: str | None, exclude: str | None,
                 note: str, by: str) -> list[Override]:
    """Record an include, an exclude or (with neither) a note on an item of `org_id` (named by its id,
    or by its URL: then on every item of that URL, a page and its feed entry alike)."""
    settings.organisation(org_id)
    if include and exclude:
        raise UsageError("give --include or --exclude, not both")
    criterion = include or (None if exclude in (None, "*") else exclude)
    if criterion is not None and criterion not in CRITERIA:
        raise UsageError(f"unknown criterion {criterion!r} (known: {', '.join(CRITERIA)})")
    action = "include" if include else "exclude" if exclude else "note"
    if action == "note" and not note.strip():
        raise UsageError("a note needs --note TEXT")
    with open_store(settings.db_path) as store:
        found = store.items_named(org_id, item_ref)
        if not found:
            raise UsageError(f"no item {item_ref!r} is evidence for {org_id}")
        latest = store.latest_score(org_id)  # what the validator saw: the scores of the last scoring
        scorer = latest.rubric_version if latest else ""
        seen = store.as_judged(found, scorer)
        saved = []
        for item_id in found:
            override = Override(item_id=item_id, action=action, criterion=criterion, note=strip_controls(note).strip(),
                                by=strip_controls(by).strip(), at=utcnow(),
                                machine=tuple(seen[item_id][1].items()), machine_scorer=scorer if seen[item_id][1] else "",
                                judged_text=seen[item_id][0])
            saved.append(Override(**{**override.__dict__, "id": store.add_override(org_id, override)}))
        return saved
