"""The Bluesky collector: an organisation's own posts from the public AppView, no login needed.

`app.bsky.feed.getAuthorFeed` is read newest first, following `cursor`, and stops at the newest
post stored by the previous run (kept in our cursor), so a nightly run reads only what is new.
Reposts are someone else's words and are skipped.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Iterator

from harvester.collectors import CollectRequest, Event
from harvester.errors import CollectorError, HTTPStatusError, NotConnected
from harvester.web.extract import parse_date
from harvester.items import Item, NextCursor, RawRecord, Snapshot, tags_scheme

PAGE_SIZE = 100


def post_url(post: dict) -> str:
    handle = (post.get("author") or {}).get("handle") or (post.get("author") or {}).get("did", "")
    rkey = post["uri"].rsplit("/", 1)[-1]
    return f"https://bsky.app/profile/{handle}/post/{rkey}"


def parse_feed_item(entry: dict, *, org_id: str, source_id: str, fetched_at,
                    record: RawRecord | None = None) -> Item | None:
    """An item from one feedViewPost; None for a repost. `record`: the API answer it was read from."""
    if entry.get("reason"):
        return None
    post = entry["post"]
    written = post.get("record") or {}  # the post as its author wrote it
    text = written.get("text", "")
    images = (post.get("embed") or {}).get("images") or []
    alts = [img.get("alt") for img in images if img.get("alt")]
    if alts:
        text += "\n" + "\n".join(f"[image: {a}]" for a in alts)
    tags = " ".join("#" + f.get("tag", "") for facet in written.get("facets") or []
                    for f in facet.get("features") or [] if f.get("tag"))
    return Item(
        org_id=org_id, source_id=source_id, platform="bluesky", kind="post", native_id=post["uri"],
        url=post_url(post), title="", text=text, published=parse_date(written.get("createdAt") or post.get("indexedAt")),
        author=(post.get("author") or {}).get("handle"), author_id=(post.get("author") or {}).get("did"),
        tags_scheme=tags_scheme(text, tags),
        snapshot=Snapshot(url=post_url(post), fetched_at=fetched_at, status=200, content_type="application/json",
                          body=json.dumps(entry, ensure_ascii=False, sort_keys=True).encode("utf-8"), record=record))


def collect(req: CollectRequest) -> Iterator[Event]:
    spec, http = req.source, req.http
    url = f"{req.settings.platforms.bluesky_appview_url.rstrip('/')}/xrpc/app.bsky.feed.getAuthorFeed"
    stop_at = req.cursor.get("newest_uri")
    stop_before = req.cursor.get("newest_created")  # as the platform wrote it, so it compares as text
    newest_uri, newest_at, newest_created = None, None, None
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
            created = (post.get("record") or {}).get("createdAt") or post.get("indexedAt") or ""
            if post["uri"] == stop_at or (stop_before and created and created < stop_before
                                          and not entry.get("reason")):
                reached_known = True  # the newest post of the last run, or older (it may have been deleted)
                break
            read += 1
            item = parse_feed_item(entry, org_id=spec.org_id, source_id=spec.id, fetched_at=response.fetched_at,
                                   record=response.record)
            if item is None:
                continue
            if newest_uri is None:
                newest_uri, newest_at, newest_created = post["uri"], item.published, created
            yield item
        page_cursor = data.get("cursor")
        if reached_known or not page_cursor or not data["feed"]:
            break
    cursor = dict(req.cursor)
    if newest_uri:
        cursor.update(newest_uri=newest_uri, newest_at=newest_at.isoformat() if newest_at else None,
                      newest_created=newest_created or None)
    yield NextCursor(cursor)


# -- the scheme's mentions and tags: searchPosts, which needs a login ------------------------------

_sessions: dict[str, dict] = {}  # one session per process and PDS, refreshed rather than recreated
_sessions_lock = threading.Lock()


def _session_file(req: CollectRequest) -> Path:
    """Where the session is kept between runs (beside the database, readable by its owner only):
    createSession is limited to 30 per 5 minutes and ~100 a day, so a nightly run refreshes."""
    return Path(f"{req.settings.db_path}.bluesky-session")


def _save_session(path: Path, session: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({k: session[k] for k in ("did", "handle", "accessJwt", "refreshJwt") if k in session}, fh)


def session_for(req: CollectRequest) -> dict:
    """A logged-in session: this run's, else the saved one refreshed, else a new login with
    BLUESKY_HANDLE and BLUESKY_APP_PASSWORD from the environment."""
    pds = req.settings.platforms.bluesky_pds_url.rstrip("/")
    with _sessions_lock:
        if pds in _sessions:
            return _sessions[pds]
        handle, password = os.environ.get("BLUESKY_HANDLE"), os.environ.get("BLUESKY_APP_PASSWORD")
        path = _session_file(req)
        session = None
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = None
        if isinstance(saved, dict) and saved.get("refreshJwt"):
            try:
                session = req.http.post_json(f"{pds}/xrpc/com.atproto.server.refreshSession", body={},
                                             headers={"Authorization": f"Bearer {saved['refreshJwt']}"})
            except HTTPStatusError:
                session = None  # expired or revoked: log in again below
        if session is None:
            if not handle or not password:
                raise NotConnected("Bluesky search needs a login: set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD "
                                   "(an app password of the scheme's account)")
            try:
                session = req.http.post_json(f"{pds}/xrpc/com.atproto.server.createSession",
                                             body={"identifier": handle, "password": password})
            except HTTPStatusError as exc:
                raise CollectorError(f"Bluesky login as {handle} refused (HTTP {exc.status}); check "
                                     "BLUESKY_APP_PASSWORD", source=req.source.id, url=exc.url) from None
        if not isinstance(session, dict) or not session.get("accessJwt"):
            raise CollectorError("Bluesky session answer has no accessJwt", source=req.source.id, url=pds)
        _save_session(path, session)
        _sessions[pds] = session
        return session


def collect_search(req: CollectRequest) -> Iterator[Event]:
    """Posts that mention the scheme's account or carry one of its tags, newest first, from the
    time the last run reached (`since`): search cursors may not reach every hit, the date does."""
    spec, http = req.source, req.http
    session = session_for(req)
    url = f"{req.settings.platforms.bluesky_pds_url.rstrip('/')}/xrpc/app.bsky.feed.searchPosts"
    headers = {"Authorization": f"Bearer {session['accessJwt']}"}
    since = req.cursor.get("since")
    searches = [{"mentions": spec.locator.lstrip("@")}] + [{"tag": t.lstrip("#")} for t in req.settings.scheme.tags]
    seen: set[str] = set()
    newest = since
    for search in searches:
        page_cursor, read = None, 0
        while read < req.settings.harvest.max_posts_per_source:
            params = {"q": "*", "sort": "latest", "limit": PAGE_SIZE, **search}
            if since:
                params["since"] = since
            if page_cursor:
                params["cursor"] = page_cursor
            data, response = http.get_json(url, params=params, headers=headers)
            if not isinstance(data, dict) or not isinstance(data.get("posts"), list):
                raise CollectorError("searchPosts answer has no posts list", source=spec.id, url=response.url)
            for post in data["posts"]:
                if not isinstance(post, dict) or "uri" not in post:
                    raise CollectorError("search hit without uri", source=spec.id, url=response.url)
                read += 1
                if post["uri"] in seen:
                    continue
                seen.add(post["uri"])
                item = parse_feed_item({"post": post}, org_id=spec.org_id, source_id=spec.id,
                                       fetched_at=response.fetched_at, record=response.record)
                if item is not None:
                    at = (post.get("indexedAt") or (post.get("record") or {}).get("createdAt"))
                    newest = max(filter(None, [newest, at])) if at else newest
                    yield item
            page_cursor = data.get("cursor")
            if not page_cursor or not data["posts"]:
                break
    yield NextCursor({**req.cursor, "since": newest} if newest else dict(req.cursor))
