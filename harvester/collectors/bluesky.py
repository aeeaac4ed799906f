"""The Bluesky collector: an organisation's own posts from the public AppView, no login needed.

`app.bsky.feed.getAuthorFeed` is read newest first, following `cursor`, and stops at the newest
post stored by the previous run (kept in our cursor), so a nightly run reads only what is new.
Reposts are someone else's words and are skipped.
"""

from __future__ import annotations

import json
from typing import Iterator

from harvester.collectors import CollectRequest, Event
from harvester.errors import CollectorError
from harvester.web.extract import parse_date
from harvester.items import Item, NextCursor, Snapshot, tags_scheme

PAGE_SIZE = 100


def post_url(post: dict) -> str:
    handle = (post.get("author") or {}).get("handle") or (post.get("author") or {}).get("did", "")
    rkey = post["uri"].rsplit("/", 1)[-1]
    return f"https://bsky.app/profile/{handle}/post/{rkey}"


def parse_feed_item(entry: dict, *, org_id: str, source_id: str, fetched_at) -> Item | None:
    """An item from one feedViewPost; None for a repost."""
    if entry.get("reason"):
        return None
    post = entry["post"]
    record = post.get("record") or {}
    text = record.get("text", "")
    images = (post.get("embed") or {}).get("images") or []
    alts = [img.get("alt") for img in images if img.get("alt")]
    if alts:
        text += "\n" + "\n".join(f"[image: {a}]" for a in alts)
    tags = " ".join("#" + f.get("tag", "") for facet in record.get("facets") or []
                    for f in facet.get("features") or [] if f.get("tag"))
    return Item(
        org_id=org_id, source_id=source_id, platform="bluesky", kind="post", native_id=post["uri"],
        url=post_url(post), title="", text=text, published=parse_date(record.get("createdAt") or post.get("indexedAt")),
        author=(post.get("author") or {}).get("handle"), tags_scheme=tags_scheme(text, tags),
        snapshot=Snapshot(url=post_url(post), fetched_at=fetched_at, status=200, content_type="application/json",
                          body=json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8")))


def collect(req: CollectRequest) -> Iterator[Event]:
    spec, http = req.source, req.http
    url = f"{req.settings.platforms.bluesky_appview_url.rstrip('/')}/xrpc/app.bsky.feed.getAuthorFeed"
    stop_at = req.cursor.get("newest_uri")
    newest_uri, newest_at = None, None
    page_cursor, read = None, 0
    while read < req.settings.harvest.max_posts_per_source:
        params = {"actor": spec.locator.lstrip("@"), "filter": "posts_no_replies", "limit": PAGE_SIZE}
        if page_cursor:
            params["cursor"] = page_cursor
        data, response = http.get_json(url, params=params)
        if not isinstance(data, dict) or not isinstance(data.get("feed"), list):
            raise CollectorError("getAuthorFeed answer has no feed list", source=spec.id, url=response.url)
        reached_known = False
        for entry in data["feed"]:
            post = entry.get("post") if isinstance(entry, dict) else None
            if not isinstance(post, dict) or "uri" not in post:
                raise CollectorError("feed entry without post.uri", source=spec.id, url=response.url)
            if post["uri"] == stop_at:
                reached_known = True
                break
            read += 1
            item = parse_feed_item(entry, org_id=spec.org_id, source_id=spec.id, fetched_at=response.fetched_at)
            if item is None:
                continue
            if newest_uri is None:
                newest_uri, newest_at = post["uri"], item.published
            yield item
        page_cursor = data.get("cursor")
        if reached_known or not page_cursor or not data["feed"]:
            break
    cursor = dict(req.cursor)
    if newest_uri:
        cursor.update(newest_uri=newest_uri, newest_at=newest_at.isoformat() if newest_at else None)
    yield NextCursor(cursor)
