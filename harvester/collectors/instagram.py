"""The Instagram collector: media that tag the scheme's account, and an organisation's own media.

Instagram's Graph API answers only through a professional account linked to a Facebook Page, with
that Page's token: `META_PAGE_TOKEN` for the scheme (photo tags `/{ig-user-id}/tags`, and, where the
deployment has Instagram Public Content Access, the scheme's hashtags), `META_PAGE_TOKEN_<ORG>` for an
organisation's own `/{ig-user-id}/media`. Instagram rations hashtag search to 30 unique hashtags per
account in a rolling 7 days, so the hashtag ids (which never change) and the searches made are kept
in the cursor, and a search that would pass the limit waits for a later run. Hashtag media carry no
author: Instagram does not give it. Tokens, paging and errors are handled as for Facebook.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Iterator

from harvester.collectors import CollectRequest, Event
from harvester.collectors.facebook import SCHEME_TOKEN, Graph, Throttled, Walk, org_token_variable, token_from
from harvester.errors import CollectorError, DeferredError, NotConnected
from harvester.web.extract import parse_date
from harvester.items import Item, NextCursor, Problem, RawRecord, Refused, Snapshot, tags_scheme, utcnow

PAGE_SIZE = 50  # hashtag media pages hold at most 50
MEDIA_FIELDS = "id,caption,comments_count,like_count,media_type,media_url,permalink,timestamp,username,owner"
HASHTAG_FIELDS = "id,caption,comments_count,like_count,media_type,media_url,permalink,timestamp"
HASHTAG_LIMIT = 30
HASHTAG_WINDOW = 7 * 24 * 3600


def parse_media(obj: dict, *, org_id: str, source_id: str, fetched_at, response_status: int = 200,
                tagged: bool = False, api_url: str | None = None, record: RawRecord | None = None) -> Item | None:
    """An item from one IG Media object; None without an id. `tagged`: reached through the scheme's
    photo tags or hashtag, so it tags the scheme whatever its caption says."""
    if not isinstance(obj, dict) or not obj.get("id"):
        return None
    text = obj.get("caption") or ""
    owner = obj.get("owner") if isinstance(obj.get("owner"), dict) else {}
    permalink = obj.get("permalink")
    return Item(
        org_id=org_id, source_id=source_id, platform="instagram", kind="post", native_id=str(obj["id"]),
        url=permalink, title="", text=text, published=parse_date(obj.get("timestamp")),
        author=obj.get("username") or None, author_id=str(owner["id"]) if owner.get("id") else None,
        tags_scheme=tagged or tags_scheme(text),
        snapshot=Snapshot(url=permalink or api_url or "", fetched_at=fetched_at, status=response_status,
                          content_type="application/json",
                          body=json.dumps(obj, ensure_ascii=False, sort_keys=True).encode("utf-8"), record=record))


def _media(walk: Walk, spec, seen: set[str], *, tagged: bool):
    """The items of a walk, each media once per run; returns how many objects were read."""
    read = 0
    for got in walk:
        if isinstance(got, (Problem, Refused)):
            yield got
            continue
        obj, response = got
        read += 1
        if str(obj["id"]) in seen:
            continue
        seen.add(str(obj["id"]))
        item = parse_media(obj, org_id=spec.org_id, source_id=spec.id, fetched_at=response.fetched_at,
                           response_status=response.status, tagged=tagged, api_url=response.url,
                           record=response.record)
        if item is not None:
            yield item
    return read


def _ig_user(req: CollectRequest) -> str:
    ig_user = req.source.locator.strip()
    if not ig_user.isdigit():
        raise NotConnected(f"{req.source.id}: Instagram is read through the Graph API, which needs the "
                           f"account's numeric Instagram user id (the Page's instagram_business_account), "
                           f"not {req.source.locator!r}")
    return ig_user


def _hashtags(req: CollectRequest, graph: Graph, ig_user: str, cursor: dict, seen: set[str], budget: int):
    """Recent media of each scheme hashtag, searching a hashtag's id only once and never past
    Instagram's 30 unique hashtags in 7 days. Updates `cursor`; returns False if throttled."""
    now = int(utcnow().timestamp())
    searches = {t: at for t, at in (cursor.get("hashtag_searches") or {}).items() if now - at < HASHTAG_WINDOW}
    hashtags = dict(cursor.get("hashtags") or {})
    search_url = f"{graph.base}/ig_hashtag_search"
    try:
        for tag in req.settings.scheme.tags:
            key = tag.lstrip("#").lower()
            state = dict(hashtags.get(key) or {})
            if not state.get("id"):
                if key not in searches and len(searches) >= HASHTAG_LIMIT:
                    free = dt.datetime.fromtimestamp(min(searches.values()) + HASHTAG_WINDOW, dt.timezone.utc)
                    yield Problem(search_url, DeferredError(
                        f"Instagram allows {HASHTAG_LIMIT} unique hashtag searches per account in 7 days and "
                        f"{len(searches)} were made; #{key} waits until {free:%Y-%m-%d %H:%M} UTC", url=search_url))
                    continue
                found, response = graph.get(search_url, {"user_id": ig_user, "q": key})
                searches[key] = now
                if not isinstance(found.get("data"), list):
                    raise CollectorError("hashtag search answered without a data list", source=req.source.id,
                                         url=response.url)
                ids = [h.get("id") for h in found["data"] if isinstance(h, dict) and h.get("id")]
                if not ids:
                    continue  # Instagram knows no such hashtag: nothing to read
                state["id"] = str(ids[0])
            if budget <= 0:
                break
            walk = Walk(graph, f"{graph.base}/{state['id']}/recent_media",
                        {"user_id": ig_user, "fields": HASHTAG_FIELDS, "limit": PAGE_SIZE},
                        {k: v for k, v in state.items() if k != "id"}, stamp="timestamp", ordered=False, limit=budget)
            budget -= yield from _media(walk, req.source, seen, tagged=True)
            hashtags[key] = {"id": state["id"], **walk.state}
            if walk.throttled:
                return False
    except Throttled as exc:
        yield exc.problem
        return False
    finally:
        cursor["hashtags"], cursor["hashtag_searches"] = hashtags, searches
    return True


def collect_tags(req: CollectRequest) -> Iterator[Event]:
    """Media in which the scheme's account is tagged, and (if enabled) media of the scheme's hashtags."""
    ig_user = req.source.locator.strip()
    if not ig_user.isdigit():
        raise CollectorError("the scheme's Instagram account must be given by its numeric user id",
                             source=req.source.id)
    token = token_from(SCHEME_TOKEN, f"set {SCHEME_TOKEN} to collect Instagram media that tag the scheme's account")
    graph = Graph(req, token, SCHEME_TOKEN, "Instagram")
    cursor, seen = dict(req.cursor), set()
    budget = req.settings.harvest.max_posts_per_source
    walk = Walk(graph, f"{graph.base}/{ig_user}/tags", {"fields": MEDIA_FIELDS, "limit": PAGE_SIZE},
                cursor.get("tags") or {}, stamp="timestamp", ordered=False, limit=budget)
    budget -= yield from _media(walk, req.source, seen, tagged=True)
    cursor["tags"] = walk.state
    if not walk.throttled and req.settings.scheme.instagram_hashtag_search:
        yield from _hashtags(req, graph, ig_user, cursor, seen, budget)
    yield NextCursor(cursor)


def collect(req: CollectRequest) -> Iterator[Event]:
    """An organisation's own media (`/{ig-user-id}/media`), read with the Page token it gave us."""
    ig_user = _ig_user(req)
    variable = org_token_variable(req.source.org_id)
    token = token_from(variable, f"set {variable} to the Page token linked to {req.source.org_id}'s Instagram "
                                 "account to collect its posts")
    graph = Graph(req, token, variable, "Instagram")
    walk = Walk(graph, f"{graph.base}/{ig_user}/media", {"fields": MEDIA_FIELDS, "limit": PAGE_SIZE},
                req.cursor, stamp="timestamp", ordered=True, limit=req.settings.harvest.max_posts_per_source)
    yield from _media(walk, req.source, set(), tagged=False)
    yield NextCursor(walk.state)
