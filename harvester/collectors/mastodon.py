"""The Mastodon collector: an organisation's own public posts, with no token needed.

The registry gives an account as `@user@server` or `https://server/@user`. The account id is
looked up once (`/api/v1/accounts/lookup`) and kept in the cursor; then
`/api/v1/accounts/{id}/statuses` is read newest first, following the `Link: rel="next"` header,
on the first run, and from the saved `min_id` forwards (`rel="prev"`) on later runs, so a nightly
run asks only for what is new. Paging links are followed only on the same server.
"""

from __future__ import annotations

import json
import os
from typing import Iterator
from urllib.parse import urlsplit

import httpx

from harvester.collectors import CollectRequest, Event
from harvester.errors import CollectorError, HTTPStatusError, NotConnected
from harvester.web.extract import html_to_text, parse_date
from harvester.items import Item, NextCursor, RawRecord, Snapshot, tags_scheme

PAGE_SIZE = 40


def parse_handle(locator: str) -> tuple[str, str] | None:
    """(server base URL, acct) from `@user@server` or a profile URL `https://server/@user`; None
    when the locator is neither."""
    if locator.startswith(("http://", "https://")):
        parts = urlsplit(locator)
        user = parts.path.strip("/").split("/")[0].lstrip("@")
        if not user or not parts.netloc:
            return None
        return f"{parts.scheme}://{parts.netloc}", user
    bits = locator.lstrip("@").split("@")
    if len(bits) != 2 or not all(bits):
        return None
    return f"https://{bits[1]}", bits[0]


def parse_status(status: dict, *, org_id: str, source_id: str, fetched_at, response_status: int = 200,
                 record: RawRecord | None = None) -> Item | None:
    """An item from one Status object; None for a reblog (someone else's post). `record`: the API
    answer it was read from, as received."""
    if status.get("reblog"):
        return None
    text = html_to_text(status.get("content"))
    if status.get("spoiler_text"):
        text = f"{status['spoiler_text']}\n{text}"
    alts = [m.get("description") for m in status.get("media_attachments") or [] if m.get("description")]
    if alts:
        text += "\n" + "\n".join(f"[image: {a}]" for a in alts)
    mentions = " ".join("@" + m.get("acct", "") for m in status.get("mentions") or [])
    tags = " ".join("#" + t.get("name", "") for t in status.get("tags") or [])
    account = status.get("account") or {}
    return Item(
        org_id=org_id, source_id=source_id, platform="mastodon", kind="post",
        native_id=status["uri"], url=status.get("url") or status["uri"], title="", text=text,
        published=parse_date(status.get("created_at")), author=account.get("acct"),
        author_id=account.get("url"),  # account ids are per server; the profile URL is the same everywhere
        tags_scheme=tags_scheme(text, mentions, tags),
        snapshot=Snapshot(url=status.get("url") or status["uri"], fetched_at=fetched_at, status=response_status,
                          content_type="application/json",
                          body=json.dumps(status, ensure_ascii=False, sort_keys=True).encode("utf-8"), record=record))


def _link(response_headers: dict[str, str], rel: str, base: str) -> str | None:
    header = response_headers.get("link")
    if not header:
        return None
    for link in httpx.Response(200, headers={"link": header}).links.values():
        if link.get("rel") == rel and link.get("url", "").startswith(base + "/"):
            return link["url"]
    return None


def collect(req: CollectRequest) -> Iterator[Event]:
    spec, http = req.source, req.http
    parsed = parse_handle(spec.locator)
    if parsed is None:
        raise CollectorError("not a Mastodon handle like @user@server or a profile URL", source=spec.id)
    base, acct = parsed
    cursor = dict(req.cursor)
    if not cursor.get("account_id"):
        try:
            account, _ = http.get_json(f"{base}/api/v1/accounts/lookup", params={"acct": acct})
        except HTTPStatusError as exc:
            if exc.status == 404:
                raise CollectorError(f"account {acct!r} not found on {base}", source=spec.id, url=exc.url) from None
            raise
        if not isinstance(account, dict) or "id" not in account:
            raise CollectorError("account lookup answered without an id", source=spec.id, url=base)
        cursor["account_id"] = str(account["id"])
    statuses_url = f"{base}/api/v1/accounts/{cursor['account_id']}/statuses"
    yield from _read_timeline(req, base, statuses_url, cursor, {"exclude_reblogs": "true", "limit": PAGE_SIZE})


def collect_tag(req: CollectRequest) -> Iterator[Event]:
    """A hashtag's public timeline on one server (`https://server/tags/iCCQM`): the scheme's tag as
    that server has received it through federation. No token needed; the same post seen on two
    servers is one item (its `uri`)."""
    spec = req.source
    parts = urlsplit(spec.locator)
    tag = parts.path.rstrip("/").rsplit("/", 1)[-1].lstrip("#")
    if parts.scheme not in ("http", "https") or not parts.netloc or not tag:
        raise CollectorError("not a tag URL like https://server/tags/iCCQM", source=spec.id)
    base = f"{parts.scheme}://{parts.netloc}"
    yield from _read_timeline(req, base, f"{base}/api/v1/timelines/tag/{tag}", dict(req.cursor),
                              {"limit": PAGE_SIZE})


def collect_mentions(req: CollectRequest) -> Iterator[Event]:
    """Posts that mention the scheme's own account, from its notifications on its home server
    (they reach it whichever server the author is on). Needs the account's token, MASTODON_TOKEN
    (read:notifications), sent only in the Authorization header."""
    spec = req.source
    token = os.environ.get("MASTODON_TOKEN", "").strip()
    if not token:
        raise NotConnected("set MASTODON_TOKEN (the scheme account's token, read:notifications) to collect its "
                           "mentions")
    parsed = parse_handle(spec.locator)
    if parsed is None:
        raise CollectorError("not a Mastodon handle like @user@server or a profile URL", source=spec.id)
    base = parsed[0]
    yield from _read_timeline(req, base, f"{base}/api/v1/notifications", dict(req.cursor),
                              {"types[]": "mention", "limit": PAGE_SIZE},
                              headers={"Authorization": f"Bearer {token}"}, unwrap="status")


def _read_timeline(req: CollectRequest, base: str, url: str, cursor: dict, params: dict,
                   headers: dict | None = None, unwrap: str | None = None) -> Iterator[Event]:
    """Newest first following `rel="next"` on a first run; from the saved `min_id` forwards
    (`rel="prev"`) on later runs, so a nightly run asks only for what is new."""
    spec, http = req.source, req.http
    params = dict(params)
    forwards = bool(cursor.get("min_id"))
    if forwards:
        params["min_id"] = cursor["min_id"]
    newest, read = cursor.get("min_id"), 0
    while url and read < req.settings.harvest.max_posts_per_source:
        page, response = http.get_json(url, params=params, headers=headers)
        params = None  # paging links carry their own query
        if not isinstance(page, list):
            raise CollectorError("timeline answer is not a list", source=spec.id, url=response.url)
        if not page:
            break
        for entry in page:
            # a notification wraps its status; its own id is the one paging and min_id count in
            status = entry.get(unwrap) if unwrap and isinstance(entry, dict) else entry
            if not isinstance(status, dict) or "id" not in status or "uri" not in status or "id" not in entry:
                raise CollectorError("status without id or uri", source=spec.id, url=response.url)
            read += 1
            if newest is None or int(entry["id"]) > int(newest):
                newest = str(entry["id"])
            item = parse_status(status, org_id=spec.org_id, source_id=spec.id, fetched_at=response.fetched_at,
                                response_status=response.status, record=response.record)
            if item is not None:
                yield item
        url = _link(response.headers, "prev" if forwards else "next", base)
    if newest is not None:
        cursor["min_id"] = newest
    yield NextCursor(cursor)
