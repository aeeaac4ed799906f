"""The feed collector: RSS and Atom (feedparser) and JSON Feed: blogs, news pages, YouTube channels.

The feed is fetched through the safe client (feedparser never fetches anything itself) with the
saved ETag / Last-Modified, so an unchanged feed costs one 304. Each entry becomes an item keyed by
its link (or id); its snapshot is the entry as parsed, since the feed document itself changes
with every new post, and points at the feed document as it was received (its raw record).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from typing import Iterator
from urllib.parse import urlencode

import feedparser

from harvester.collectors import CollectRequest, Event
from harvester.errors import CollectorError
from harvester.web.extract import html_to_text, parse_date
from harvester.web.client import Response
from harvester.items import Item, NextCursor, Snapshot, tags_scheme
from harvester.web.urls import canonical

ENTRY_FIELDS = ("id", "title", "link", "author", "published", "updated", "summary", "content", "tags")


def _when(entry) -> dt.datetime | None:
    for key in ("published_parsed", "updated_parsed"):
        value = entry.get(key)
        if value:
            return dt.datetime.fromtimestamp(calendar.timegm(value), tz=dt.timezone.utc)
    return None


def _json_feed_entries(body: bytes, url: str, source_id: str) -> list[dict]:
    """JSON Feed (jsonfeed.org) items as feedparser-shaped entries; feedparser reads no JSON."""
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise CollectorError(f"not a feed (malformed JSON: {exc})", source=source_id, url=url) from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise CollectorError("not a feed (JSON without an items list)", source=source_id, url=url)
    entries = []
    for it in data["items"]:
        if not isinstance(it, dict):
            continue
        when = parse_date(it.get("date_published") or it.get("date_modified"))
        authors = it.get("authors") or ([it["author"]] if isinstance(it.get("author"), dict) else [])
        entries.append({
            "id": it.get("id"), "link": it.get("url") or it.get("external_url"), "title": it.get("title", ""),
            "summary": it.get("summary") or it.get("content_text") or "",
            "content": [{"value": it.get("content_html") or it.get("content_text") or ""}],
            "author": ", ".join(a.get("name", "") for a in authors if isinstance(a, dict)) or None,
            "tags": [{"term": t} for t in it.get("tags") or [] if isinstance(t, str)],
            "published_parsed": when.utctimetuple() if when else None,
        })
    return entries


def parse_feed(body: bytes, url: str, *, org_id: str, source_id: str, platform: str,
               response: Response | None = None) -> list[Item]:
    """Items of an RSS, Atom or JSON feed body; a body that is not a feed at all is a CollectorError."""
    if body.lstrip()[:1] == b"{":
        entries = _json_feed_entries(body, url, source_id)
    else:
        parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
        if not parsed.entries and (parsed.bozo or not parsed.version):  # HTML or junk, not a feed
            raise CollectorError(f"not a feed ({parsed.get('bozo_exception') or 'no RSS or Atom root'})", source=source_id, url=url)
        entries = parsed.entries
    items = []
    for entry in entries:
        link = canonical(entry.get("link") or "", url)
        native = link or entry.get("id")
        if not native:
            continue
        content = " ".join(c.get("value", "") for c in entry.get("content", []))
        media = " ".join(m.get("content", "") for m in entry.get("media_description", []) if isinstance(m, dict))
        summary = entry.get("summary", "") or entry.get("media_description", "") or ""
        text = html_to_text(content if len(content) > len(summary) else summary)
        if media and media not in text:
            text = f"{text}\n{html_to_text(media)}".strip()
        categories = " ".join(f"#{t.get('term', '')}" for t in entry.get("tags", []) if isinstance(t, dict))
        title = html_to_text(entry.get("title", ""))
        raw = {k: entry.get(k) for k in ENTRY_FIELDS if entry.get(k) is not None}
        snapshot = Snapshot(
            url=url, fetched_at=response.fetched_at if response else dt.datetime.now(dt.timezone.utc),
            status=response.status if response else 200, content_type="application/json",
            body=json.dumps(raw, sort_keys=True, default=str).encode("utf-8"),
            headers={"x-ccqm-feed-entry-of": url}, record=response.record if response else None)
        items.append(Item(org_id=org_id, source_id=source_id, platform=platform, kind="feed_entry",
                          native_id=native, url=link, title=title, text=text, published=_when(entry),
                          author=entry.get("author"), tags_scheme=tags_scheme(title, text, categories),
                          snapshot=snapshot))
    return items


def fetch_feed(req: CollectRequest, url: str) -> Response:
    headers = {}
    if req.cursor.get("etag"):
        headers["If-None-Match"] = req.cursor["etag"]
    if req.cursor.get("last_modified"):
        headers["If-Modified-Since"] = req.cursor["last_modified"]
    return req.http.get(url, headers=headers)


def _collect(req: CollectRequest, url: str) -> Iterator[Event]:
    response = fetch_feed(req, url)
    if response.status == 304:
        yield NextCursor(req.cursor)
        return
    if response.status in (404, 410):
        raise CollectorError(f"feed answers HTTP {response.status}", source=req.source.id, url=url)
    yield from parse_feed(response.body, response.url, org_id=req.source.org_id, source_id=req.source.id,
                          platform=req.source.platform, response=response)
    yield NextCursor({"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")})


def collect(req: CollectRequest) -> Iterator[Event]:
    yield from _collect(req, req.source.locator)


def collect_youtube(req: CollectRequest) -> Iterator[Event]:
    """A YouTube channel (a `UC...` id) through its public Atom feed."""
    channel = req.source.locator
    if channel.startswith("http"):
        url = channel
    else:
        url = f"{req.settings.platforms.youtube_feed_url}?{urlencode({'channel_id': channel})}"
    yield from _collect(req, url)
