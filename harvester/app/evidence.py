"""`ccqm evidence add`: a page no collector reaches (a LinkedIn or Threads post, a local news
article) fetched once through the same safe client — address policy, robots.txt, byte caps — and
stored as the organisation's evidence with its snapshot, like any harvested page."""

from __future__ import annotations

from harvester.collectors import CollectRequest
from harvester.collectors.website import page_item
from harvester.config.registry import SourceSpec
from harvester.config.settings import Settings
from harvester.errors import ContentError, FetchError
from harvester.items import utcnow
from harvester.store.db import open_store
from harvester.web.client import build_client
from harvester.web.urls import canonical


def add_evidence(settings: Settings, org_id: str, url: str, *, note: str, by: str) -> tuple[str, str]:
    """Fetch `url` and keep it as `org_id`'s evidence; returns (item id, 'new'|'changed'|'unchanged')."""
    settings.organisation(org_id)  # an unknown organisation is a usage error naming the registry
    target = canonical(url)
    if not target:
        raise FetchError("not an http(s) URL", url=url)
    spec = SourceSpec(org_id, "manual", "evidence added by validators")
    with build_client(settings.http, settings.harvest) as http:
        response = http.get(target)
        if response.status != 200:
            raise FetchError(f"HTTP {response.status}", url=target)
        item, _ = page_item(CollectRequest(source=spec, cursor={}, http=http, settings=settings), target, response)
    if item is None:
        raise ContentError(f"no readable text at {target} ({response.content_type or 'no content type'})")
    how = f"added by {by}" + (f": {note}" if note else "")
    with open_store(settings.db_path) as store:
        outcome = store.add_manual(spec, item, how, utcnow())
    return item.id, outcome
