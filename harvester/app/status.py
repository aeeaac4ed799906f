"""`ccqm orgs` and `ccqm runs`: what the registry says and what the store knows. Read-only: they
never create or change the database, and with no database yet they say so."""

from __future__ import annotations

from harvester.config.settings import Settings
from harvester.store.db import open_store


def org_status(settings: Settings) -> list[dict]:
    def row(org, store=None) -> dict:
        score = store.latest_score(org.id) if store else None
        return {
            "id": org.id, "name": org.name, "kind": org.kind, "registered": org.registered.isoformat(),
            "claimed_step": org.step, "sources": len(org.sources),
            "last_harvest": store.last_harvest(org.id) if store else None,
            "award": score.award.level if score else None,
            "levels": {c.criterion: c.level for c in score.criteria} if score else {},
        }

    if not settings.db_path.exists():
        return [row(org) for org in settings.organisations]
    with open_store(settings.db_path, read_only=True) as store:
        return [row(org, store) for org in settings.organisations]


def recent_runs(settings: Settings, limit: int = 10) -> list[dict]:
    """`ccqm runs`: the latest harvests, newest first (none when there is no database yet)."""
    if not settings.db_path.exists():
        return []
    with open_store(settings.db_path, read_only=True) as store:
        runs = store.recent_runs(limit)
    for run in runs:
        end = run["finished_at"]
        run["seconds"] = round((end - run["started_at"]).total_seconds(), 1) if end else None
    return runs
