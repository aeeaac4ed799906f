"""Validators' decisions on single items: checked, then stored forever with who, when and why."""

from __future__ import annotations

from harvester.errors import ConfigError
from harvester.items import utcnow
from harvester.config.settings import Settings
from harvester.store.db import open_store
from scoring import CRITERIA, Override


def add_override(settings: Settings, org_id: str, item_ref: str, *, include: str | None, exclude: str | None,
                 note: str, by: str) -> Override:
    """Record an include, an exclude or (with neither) a note on one item of `org_id`."""
    settings.organisation(org_id)
    if include and exclude:
        raise ConfigError("give --include or --exclude, not both", field="override")
    criterion = include or (None if exclude in (None, "*") else exclude)
    if criterion is not None and criterion not in CRITERIA:
        raise ConfigError(f"unknown criterion {criterion!r} (known: {', '.join(CRITERIA)})", field="override")
    action = "include" if include else "exclude" if exclude else "note"
    if action == "note" and not note.strip():
        raise ConfigError("a note needs --note TEXT", field="override")
    with open_store(settings.db_path) as store:
        found = store.item_org(item_ref)
        if found is None or found[1] != org_id:
            raise ConfigError(f"no item {item_ref!r} belongs to {org_id}", field="override")
        override = Override(item_id=found[0], action=action, criterion=criterion, note=note.strip(), by=by.strip(),
                            at=utcnow())
        return Override(**{**override.__dict__, "id": store.add_override(org_id, override)})
