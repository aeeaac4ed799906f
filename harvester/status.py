"""`ccqm orgs`: what the registry says and what the store knows, per organisation."""

from __future__ import annotations

from harvester.settings import Settings
from harvester.store import open_store


def org_status(settings: Settings) -> list[dict]:
    rows = []
    with open_store(settings.db_path) as store:
        for org in settings.organisations:
            score = store.latest_score(org.id)
            rows.append({
                "id": org.id, "name": org.name, "kind": org.kind, "registered": org.registered.isoformat(),
                "claimed_step": org.step, "sources": len(org.sources),
                "last_harvest": store.last_harvest(org.id),
                "award": score.award.level if score else None,
                "levels": {c.criterion: c.level for c in score.criteria} if score else {},
            })
    return rows
