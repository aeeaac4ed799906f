"""The social collectors when a platform misbehaves: paging, nightly runs, rate limits, broken
answers and deleted posts, for Mastodon (account statuses, tag timeline), Bluesky (author feed,
searchPosts), Facebook (/tagged), Instagram (/tags) and X (mentions).

Only the platforms' APIs are mocked (respx); the collectors, the HTTP client (one retry, no
backoff) and, for harvest-level tests, `harvest()` on a temp DuckDB are the real ones. Bodies have
the shapes of ../shared/samples (and fixtures/platforms/ for Graph and X). Headers: Mastodon
`x-ratelimit-*` (ISO reset) and X `x-rate-limit-*` (epoch reset) as in the samples'
response-headers.json; Bluesky `ratelimit-*` (epoch reset) and Graph's `X-Business-Use-Case-Usage` /
`X-App-Usage` as PLATFORMS.md names them (the samples hold no recorded 429 of those).

Gaps only. Already shown elsewhere, so not repeated here:
  paging   Mastodon statuses (test_collectors: test_mastodon_pages_by_link_then_asks_from_min_id),
           Bluesky author feed (test_collectors: test_bluesky_follows_the_cursor_...),
           Facebook /tagged (test_meta_collectors: test_tagged_pages_to_the_last_page_and_saves_since),
           Instagram /tags (test_meta_collectors: test_instagram_tags_page_to_the_last_page),
           X mentions (test_x_collector: test_mentions_page_to_the_end_then_ask_only_since_the_newest);
  nightly  Mastodon statuses (min_id, same test), Bluesky author feed (same test), Bluesky search
           (`since`, test_scheme: test_search_logs_in_once_then_refreshes_the_saved_session),
           Facebook /tagged (test_second_run_sends_since_and_stops_at_what_it_has), Instagram /tags
           (test_instagram_tags_second_run_stops_after_a_page_with_nothing_new), X mentions (since_id,
           same test as its paging).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
import respx

from harvester.app.harvest import harvest
from harvester.collectors import CollectRequest, bluesky, collector_for, x
from harvester.config.registry import SCHEME, SourceSpec
from harvester.config.settings import HarvestSettings, HttpSettings, Settings
from harvester.items import Item, NextCursor, Problem, item_id
from harvester.store.db import open_store
from harvester.web.client import build_client
from tests.conftest import PROJECT
from tests.test_pipeline import make_settings

FIXTURES = PROJECT / "fixtures" / "platforms"

ALPHA_SERVER = "https://alpha.example.social"  # alpha's own Mastodon server
BETA_SERVER = "https://beta.example.social"  # beta's: the healthy neighbour in harvest-level tests
TAG_SERVER = "https://mastodon.example"  # where the scheme reads #iCCQM
APPVIEW = "https://public.api.bsky.app/xrpc/app.bsky.feed.getAuthorFeed"
PDS = "https://pds.example"
SEARCH_POSTS = f"{PDS}/xrpc/app.bsky.feed.searchPosts"
GRAPH = "https://graph.facebook.com/v21.0"
FB_PAGE = "108451237750213"
IG_USER = "17841465012345678"
X_USER = "1851774417532510208"
X_MENTIONS = f"https://api.x.com/2/users/{X_USER}/mentions"
X_SEARCH = "https://api.x.com/2/tweets/search/recent"
META_TOKEN = "EAAGm0PX4ZCpsBAKtestPageToken0123456789"
X_TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest-bearer-token-do-not-log"
ALPHA_ACCOUNT, BETA_ACCOUNT = "109384756102938475", "109384756102938999"

# Rate-limit headers as each platform sends them (shapes of ../shared/samples/*/response-headers.json).
MASTODON_OK = {"x-ratelimit-limit": "300", "x-ratelimit-remaining": "299",
               "x-ratelimit-reset": "2026-11-23T02:05:00.070144Z"}
MASTODON_LIMITED = {**MASTODON_OK, "x-ratelimit-remaining": "0", "content-type": "application/json"}
BLUESKY_LIMITED = {"ratelimit-limit": "3000", "ratelimit-remaining": "0", "ratelimit-reset": "1795424700",
                   "ratelimit-policy": "3000;w=300"}
X_LIMITED = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "0", "x-rate-limit-reset": "1795424700"}


def graph_usage(kind: str) -> dict[str, str]:
    """Graph's usage headers at 100%: the Business Use Case of the Page (or IG account), and the app."""
    buc = {FB_PAGE: [{"type": kind, "call_count": 100, "total_cputime": 31, "total_time": 44,
                      "estimated_time_to_regain_access": 12}]}
    return {"x-business-use-case-usage": json.dumps(buc),
            "x-app-usage": json.dumps({"call_count": 100, "total_cputime": 25, "total_time": 30})}


HTML = ("<!DOCTYPE html><html><head><title>We'll be right back</title></head>"
        "<body><h1>Down for maintenance</h1></body></html>")


def fixture(platform: str, name: str) -> dict:
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


# -- posts in each platform's shape ------------------------------------------------------------------

def status(n: int, server: str, user: str) -> dict:
    """A Mastodon Status (the shape of mastodon/timeline-tag.json), newer for a larger n."""
    sid = str(117020593741189700 + n)
    return {"id": sid, "created_at": f"2026-11-{10 + n:02d}T09:30:00.000Z", "in_reply_to_id": None,
            "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
            "uri": f"{server}/users/{user}/statuses/{sid}", "url": f"{server}/@{user}/{sid}",
            "replies_count": 0, "reblogs_count": 1, "favourites_count": 4, "edited_at": None,
            "content": f"<p>Family languages café, week {n}: {user} says thanks to all the volunteers "
                       f'<a href="{server}/tags/iCCQM" class="mention hashtag" rel="tag">#<span>iCCQM</span></a></p>',
            "reblog": None, "account": {"id": "1090", "username": user, "acct": user, "url": f"{server}/@{user}"},
            "media_attachments": [], "mentions": [], "tags": [{"name": "iCCQM", "url": f"{server}/tags/iCCQM"}],
            "emojis": [], "card": None, "poll": None}


def skeet(n: int, handle: str) -> dict:
    """A Bluesky postView (the shape of bluesky/searchPosts.json), newer for a larger n."""
    did = f"did:plc:{handle.split('.')[0]:x<24}"[:32]
    return {"uri": f"at://{did}/app.bsky.feed.post/3lbq{n:09d}", "cid": f"bafyreig{n:040d}",
            "author": {"did": did, "handle": handle, "displayName": handle.split(".")[0].title(), "labels": []},
            "record": {"$type": "app.bsky.feed.post", "createdAt": f"2026-11-{10 + n:02d}T09:30:00.000Z",
                       "text": f"Family languages café, week {n}: thank you volunteers #iCCQM",
                       "facets": [{"index": {"byteStart": 51, "byteEnd": 57},
                                   "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "iCCQM"}]}]},
            "embed": None, "replyCount": 0, "repostCount": 1, "likeCount": 4, "labels": [],
            "indexedAt": f"2026-11-{10 + n:02d}T09:30:01.000Z"}


# -- one source per platform, with what it takes to serve it -------------------------------------------

@dataclass(frozen=True)
class Source:
    key: str
    spec: SourceSpec
    url: str  # the endpoint its pages come from
    posts: Callable[[], list[dict]]  # five posts, newest first
    answer: Callable[..., httpx.Response]  # answer(posts, more=False): one page, with a next link if `more`
    native_id: Callable[[dict], str]
    server_error: httpx.Response  # what a 500 of that platform looks like
    platform: str  # the items' platform
    scheme: dict = dataclasses.field(default_factory=dict)  # SchemeSettings that turn the source on
    extra: Callable[[respx.Router], None] = lambda router: None  # lookups, logins, sibling sources


def mastodon_answer(url: str):
    def answer(posts, more=False):
        link = {"link": f'<{url}?max_id={posts[-1]["id"]}>; rel="next", <{url}?min_id={posts[0]["id"]}>; rel="prev"'}
        return httpx.Response(200, json=posts, headers={**MASTODON_OK, **(link if more else {})})
    return answer


def lookup(router, server: str, user: str, account_id: str) -> None:
    router.get(f"{server}/api/v1/accounts/lookup").mock(return_value=httpx.Response(
        200, json={"id": account_id, "username": user, "acct": user, "url": f"{server}/@{user}"}, headers=MASTODON_OK))


def bluesky_login(router) -> None:
    """The scheme account's login, and its refresh on a later run (the session is saved beside the db)."""
    session = {"did": "did:plc:iccqmxxxxxxxxxxxxxxxxxxx", "handle": "iccqm.bsky.social", "accessJwt": "ACCESS1",
               "refreshJwt": "REFRESH1"}
    router.post(f"{PDS}/xrpc/com.atproto.server.createSession").mock(return_value=httpx.Response(200, json=session))
    router.post(f"{PDS}/xrpc/com.atproto.server.refreshSession").mock(return_value=httpx.Response(200, json=session))


def graph_answer(url: str):
    def answer(posts, more=False):
        paging = {"cursors": {"before": "QVFIUnBkS2lYd0x0", "after": "QVFIUmZAxdWJ2Y3Vf"}}
        if more:
            paging["next"] = f"{url}?access_token=access_token&limit=100&after=QVFIUmZAxdWJ2Y3Vf"
        return httpx.Response(200, json={"data": posts, "paging": paging})
    return answer


GRAPH_500 = httpx.Response(500, json={"error": {
    "message": "An unexpected error has occurred. Please retry your request later.", "type": "OAuthException",
    "is_transient": True, "code": 2, "fbtrace_id": "AbC1dEf2GhI3jKl4MnO5pQr"}})
X_USERS = fixture("x", "mentions-page1.json")["includes"]["users"] + fixture("x", "mentions-page2.json")["includes"]["users"]


def x_answer(posts, more=False):
    meta = {"newest_id": posts[0]["id"], "oldest_id": posts[-1]["id"], "result_count": len(posts)}
    if more:
        meta["next_token"] = "7140dibdnow9c7btw4b0h2s9y0n1ck3d6j5fqxkz4r8pm"
    return httpx.Response(200, json={"data": posts, "includes": {"users": X_USERS}, "meta": meta},
                          headers={**X_LIMITED, "x-rate-limit-remaining": "449"})


def bluesky_search_answer(posts, more=False):
    return httpx.Response(200, json={"posts": posts, "hitsTotal": len(posts), **({"cursor": "3lbq-page2"} if more else {})})


STATUSES = f"{ALPHA_SERVER}/api/v1/accounts/{ALPHA_ACCOUNT}/statuses"
TAG_TIMELINE = f"{TAG_SERVER}/api/v1/timelines/tag/iCCQM"

SOURCES = [
    Source("mastodon", SourceSpec("alpha", "mastodon", "@alpha@alpha.example.social"), STATUSES,
           lambda: [status(n, ALPHA_SERVER, "alpha") for n in (5, 4, 3, 2, 1)], mastodon_answer(STATUSES),
           lambda s: s["uri"], httpx.Response(500, text="Internal Server Error"), "mastodon",
           extra=lambda router: lookup(router, ALPHA_SERVER, "alpha", ALPHA_ACCOUNT)),
    Source("mastodon-tag", SourceSpec(SCHEME, "mastodon-tag", f"{TAG_SERVER}/tags/iCCQM"), TAG_TIMELINE,
           lambda: [status(n, "https://elsewhere.example", "stmarks") for n in (5, 4, 3, 2, 1)],
           mastodon_answer(TAG_TIMELINE), lambda s: s["uri"], httpx.Response(500, text="Internal Server Error"),
           "mastodon", scheme={"mastodon_servers": (TAG_SERVER,)}),
    Source("bluesky", SourceSpec("alpha", "bluesky", "alpha.bsky.social"), APPVIEW,
           lambda: [skeet(n, "alpha.bsky.social") for n in (5, 4, 3, 2, 1)],
           lambda posts, more=False: httpx.Response(200, json={"feed": [{"post": p} for p in posts],
                                                              **({"cursor": "2026-11-12T09:30:00.000Z"} if more else {})}),
           lambda p: p["uri"], httpx.Response(500, json={"error": "InternalServerError", "message": "Internal Server Error"}),
           "bluesky"),
    Source("bluesky-search", SourceSpec(SCHEME, "bluesky-search", "iccqm.bsky.social"), SEARCH_POSTS,
           lambda: [skeet(n, "stmarks.bsky.social") for n in (5, 4, 3, 2, 1)], bluesky_search_answer,
           lambda p: p["uri"], httpx.Response(500, json={"error": "InternalServerError", "message": "Internal Server Error"}),
           "bluesky", scheme={"bluesky_handle": "iccqm.bsky.social"}, extra=bluesky_login),
    Source("facebook-tagged", SourceSpec(SCHEME, "facebook-tagged", FB_PAGE), f"{GRAPH}/{FB_PAGE}/tagged",
           lambda: fixture("facebook", "page-tagged-p1.json")["data"] + fixture("facebook", "page-tagged-p2-last.json")["data"],
           graph_answer(f"{GRAPH}/{FB_PAGE}/tagged"), lambda p: p["id"], GRAPH_500, "facebook",
           scheme={"facebook_page_id": FB_PAGE}),
    Source("instagram-tags", SourceSpec(SCHEME, "instagram-tags", IG_USER), f"{GRAPH}/{IG_USER}/tags",
           lambda: fixture("instagram", "ig-user-tags-p1.json")["data"] + fixture("instagram", "ig-user-tags-p2-last.json")["data"],
           graph_answer(f"{GRAPH}/{IG_USER}/tags"), lambda p: p["id"], GRAPH_500, "instagram",
           scheme={"instagram_user_id": IG_USER}),
    Source("x-mentions", SourceSpec(SCHEME, "x-mentions", X_USER), X_MENTIONS,
           lambda: fixture("x", "mentions-page1.json")["data"] + fixture("x", "mentions-page2.json")["data"][:1],
           x_answer, lambda t: t["id"], httpx.Response(503, json={"title": "Service Unavailable", "status": 503,
                                                                  "type": "about:blank", "detail": "Service Unavailable"}),
           "x", scheme={"x_user_id": X_USER},
           extra=lambda router: router.get(X_SEARCH).mock(return_value=httpx.Response(200, json={"meta": {"result_count": 0}}))),
]
BY_KEY = {s.key: s for s in SOURCES}
ALL = pytest.mark.parametrize("source", SOURCES, ids=[s.key for s in SOURCES])


def registry(source: Source) -> str:
    """alpha (with the source, when it is an organisation's account) and beta, with its own Mastodon."""
    alpha_social = ""
    if source.spec.org_id == "alpha":
        alpha_social = f'\n[organisation.social]\n{source.spec.platform} = ["{source.spec.locator}"]\n'
    return (f'[[organisation]]\nid = "alpha"\nname = "Alpha Primary School"\nkind = "school"\n'
            f'registered = 2026-01-05\n{alpha_social}\n'
            f'[[organisation]]\nid = "beta"\nname = "Beta Community Larder"\nkind = "charity"\n'
            f'registered = 2026-02-09\n\n[organisation.social]\nmastodon = ["@beta@beta.example.social"]\n')


BETA = SourceSpec("beta", "mastodon", "@beta@beta.example.social")
BETA_STATUSES = f"{BETA_SERVER}/api/v1/accounts/{BETA_ACCOUNT}/statuses"


def serve_beta(router) -> None:
    lookup(router, BETA_SERVER, "beta", BETA_ACCOUNT)
    router.get(BETA_STATUSES).mock(return_value=httpx.Response(
        200, json=[status(n, BETA_SERVER, "beta") for n in (2, 1)], headers=MASTODON_OK))


@pytest.fixture(autouse=True)
def credentials(monkeypatch):
    monkeypatch.setenv("META_PAGE_TOKEN", META_TOKEN)
    monkeypatch.setenv("X_BEARER_TOKEN", X_TOKEN)
    monkeypatch.setenv("BLUESKY_HANDLE", "iccqm.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "app-pass-1234")
    x.reset_budget()
    bluesky._sessions.clear()
    yield
    x.reset_budget()
    bluesky._sessions.clear()


def settings_for(tmp_path, source: Source) -> Settings:
    settings = make_settings(tmp_path, registry(source))
    return dataclasses.replace(
        settings, http=HttpSettings(retries=1, backoff_seconds=0),
        harvest=dataclasses.replace(settings.harvest, delay_seconds=0),
        platforms=dataclasses.replace(settings.platforms, bluesky_pds_url=PDS),
        scheme=dataclasses.replace(settings.scheme, **source.scheme))


def fast_http(sleeps: list | None = None):
    """The real client, one retry and no backoff, DNS answered with a public address for respx."""
    return build_client(HttpSettings(retries=1, backoff_seconds=0), HarvestSettings(delay_seconds=0),
                        resolve=lambda host: ["93.184.216.34"],
                        sleep=sleeps.append if sleeps is not None else (lambda s: None))


def api_mock():
    """Only the platforms' APIs answer; anything else asked for fails the test (respx's default)."""
    return respx.mock(assert_all_called=False)


def serve(*answers: httpx.Response):
    """Each answer once, then the last one again and again (Bluesky search asks once per search)."""
    queue = list(answers)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


def collect(source: Source, settings: Settings, cursor=None, http=None):
    """(items, problems, cursor) of one run of the source's own collector."""
    with http or fast_http() as client:
        request = CollectRequest(source=source.spec, cursor=cursor or {}, http=client, settings=settings)
        events = list(collector_for(source.spec.platform)(request))
    assert isinstance(events[-1], NextCursor)
    return ([e for e in events if isinstance(e, Item)], [e for e in events if isinstance(e, Problem)],
            events[-1].value)


def run_harvest(settings: Settings):
    x.reset_budget()
    bluesky._sessions.clear()
    with fast_http() as http:
        report = harvest(settings, settings.organisations, http=http, scheme=True)
    return {o.source.id: o for o in report.outcomes}


def stored(settings: Settings, source_id: str) -> dict[str, str]:
    with open_store(settings.db_path, read_only=True) as store:
        return dict(store.con.execute("SELECT native_id, text FROM items WHERE source_id = ?", [source_id]).fetchall())


def stored_cursor(settings: Settings, source_id: str) -> dict:
    with open_store(settings.db_path, read_only=True) as store:
        return store.cursor(source_id)


def assert_beta_unaffected(outcomes, settings) -> None:
    assert outcomes[BETA.id].status == "ok" and outcomes[BETA.id].errors == []
    assert len(stored(settings, BETA.id)) == 2


def one_line_naming(message: str, source: Source) -> None:
    assert "\n" not in message and META_TOKEN not in message and X_TOKEN not in message
    assert source.url.split("://", 1)[1] in message or source.spec.id in message, message


# -- (1, 2) the Mastodon tag timeline and Bluesky search: the paging no other test shows ---------------

def test_mastodon_tag_timeline_follows_link_next_to_the_end_then_asks_from_min_id(tmp_path):
    source = BY_KEY["mastodon-tag"]
    settings, posts = settings_for(tmp_path, source), source.posts()
    with api_mock() as router:
        route = router.get(TAG_TIMELINE).mock(side_effect=[
            source.answer(posts[:3], more=True), source.answer(posts[3:], more=True),
            httpx.Response(200, json=[], headers=MASTODON_OK)])  # the sample's end page: [] and no Link
        items, _, cursor = collect(source, settings)
    assert [i.native_id for i in items] == [p["uri"] for p in posts] and route.call_count == 3
    assert route.calls[1].request.url.params["max_id"] == posts[2]["id"]
    assert route.calls[0].request.url.params["limit"] == "40" and cursor == {"min_id": posts[0]["id"]}

    newer = [status(n, "https://elsewhere.example", "stmarks") for n in (8, 7, 6)]
    with api_mock() as router:  # the next night: only what is newer, forwards by rel="prev"
        route = router.get(TAG_TIMELINE).mock(side_effect=[
            source.answer(newer[1:], more=True), source.answer(newer[:1], more=True),
            httpx.Response(200, json=[], headers=MASTODON_OK)])
        items, _, cursor2 = collect(source, settings, cursor=cursor)
    assert route.calls[0].request.url.params["min_id"] == posts[0]["id"]
    assert [c.request.url.params.get("min_id") for c in route.calls[1:]] == [newer[1]["id"], newer[0]["id"]]
    assert "max_id" not in str(route.calls[1].request.url)  # never back down into what it has
    assert {i.native_id for i in items} == {p["uri"] for p in newer} and cursor2 == {"min_id": newer[0]["id"]}


def test_bluesky_search_follows_its_cursor_for_each_search(tmp_path):
    source = BY_KEY["bluesky-search"]
    settings, posts = settings_for(tmp_path, source), source.posts()

    def search(request):
        q = request.url.params
        if "tag" in q:
            return bluesky_search_answer(posts[4:])
        return bluesky_search_answer(posts[2:4]) if q.get("cursor") == "3lbq-page2" else bluesky_search_answer(posts[:2], more=True)

    with api_mock() as router:
        bluesky_login(router)
        route = router.get(SEARCH_POSTS).mock(side_effect=search)
        items, problems, cursor = collect(source, settings)
    asked = [dict(c.request.url.params) for c in route.calls]
    assert [(a.get("mentions"), a.get("tag"), a.get("cursor")) for a in asked] == [
        ("iccqm.bsky.social", None, None), ("iccqm.bsky.social", None, "3lbq-page2"), (None, "iCCQM", None)]
    assert [i.native_id for i in items] == [p["uri"] for p in posts] and problems == []
    assert cursor == {"since": posts[0]["indexedAt"]}


# -- (3) rate limits ----------------------------------------------------------------------------------

LIMITED = {
    "mastodon": httpx.Response(429, json={"error": "Too many requests"}, headers=MASTODON_LIMITED),
    "mastodon-tag": httpx.Response(429, json={"error": "Too many requests"}, headers=MASTODON_LIMITED),
    "bluesky": httpx.Response(429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                              headers=BLUESKY_LIMITED),
    "bluesky-search": httpx.Response(429, json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                                     headers=BLUESKY_LIMITED),
    "facebook-tagged": httpx.Response(429, json=fixture("facebook", "error-throttled-code80001.json"),
                                      headers=graph_usage("pages")),
    "instagram-tags": httpx.Response(429, json=fixture("instagram", "error-throttled-code80002.json"),
                                     headers=graph_usage("instagram")),
    "x-mentions": httpx.Response(429, json=fixture("x", "error-rate-limited.json"), headers=X_LIMITED),
}


@ALL
def test_a_passing_429_is_waited_out_within_the_cap_and_the_run_reads_everything(tmp_path, source):
    settings, posts, sleeps = settings_for(tmp_path, source), source.posts(), []
    with api_mock() as router:
        source.extra(router)
        router.get(source.url).mock(side_effect=serve(LIMITED[source.key], source.answer(posts)))
        items, problems, _ = collect(source, settings, http=fast_http(sleeps))
    assert {i.native_id for i in items} == {source.native_id(p) for p in posts} and problems == []
    assert len(sleeps) == 1 and sleeps[0] <= settings.http.max_retry_after_seconds


# What a 429 that lasts does to each source after a first page was read: Mastodon and Bluesky do not
# read their reset headers, so the source fails on the URL's "HTTP 429" and keeps its old cursor; Graph
# and X call it throttling and stop the source part way (partial) with a cursor that resumes.
STILL_LIMITED = {
    "mastodon": ("failed", r"^https://alpha\.example\.social/api/v1/accounts/\d+/statuses\?\S*max_id=\d+: HTTP 429$", None),
    "mastodon-tag": ("failed", r"^https://mastodon\.example/api/v1/timelines/tag/iCCQM\?\S*max_id=\d+: HTTP 429$", None),
    "bluesky": ("failed", r"^https://public\.api\.bsky\.app/xrpc/app\.bsky\.feed\.getAuthorFeed\?\S*cursor=\S+: HTTP 429$", None),
    "bluesky-search": ("failed", r"^https://pds\.example/xrpc/app\.bsky\.feed\.searchPosts\?\S*cursor=\S+: HTTP 429$", None),
    "facebook-tagged": ("partial", r"Facebook throttled this app \(code 80001\); the rest waits for the next run$", "resume"),
    "instagram-tags": ("partial", r"Instagram throttled this app \(code 80002\); the rest waits for the next run$", "resume"),
    "x-mentions": ("partial", r"X rate limit reached; it resets at 2026-11-23 09:05:00 UTC; the rest waits for the next run$",
                   "until_id"),
}


@ALL
def test_a_lasting_429_after_the_first_page_ends_the_source_in_one_line_and_keeps_that_page(tmp_path, source):
    settings, posts = settings_for(tmp_path, source), source.posts()
    with api_mock() as router:
        source.extra(router)
        serve_beta(router)
        route = router.get(source.url).mock(side_effect=[source.answer(posts[:2], more=True)] + [LIMITED[source.key]] * 2)
        outcomes = run_harvest(settings)
    assert route.call_count == 3  # the page, the 429 and the client's one retry: no hammering
    status, message, resumes_with = STILL_LIMITED[source.key]
    outcome = outcomes[source.spec.id]
    assert outcome.status == status and len(outcome.errors) == 1
    assert re.search(message, outcome.errors[0]), outcome.errors[0]
    one_line_naming(outcome.errors[0], source)
    assert set(stored(settings, source.spec.id)) == {source.native_id(p) for p in posts[:2]}  # what was read stays
    assert_beta_unaffected(outcomes, settings)
    cursor = stored_cursor(settings, source.spec.id)
    if resumes_with is None:
        assert cursor == {}  # not moved past what was not read: the next run reads it again
    else:
        assert resumes_with in json.dumps(cursor)  # the rest is read next time (shapes: per-collector tests)


# -- (4) broken answers: one line for that source, the others unaffected -------------------------------

BROKEN = {
    "html": lambda source: httpx.Response(200, text=HTML, headers={"content-type": "text/html; charset=utf-8"}),
    "wrong-shape": lambda source: httpx.Response(200, json=[{"unexpected": "shape"}]),
    "server-error": lambda source: source.server_error,
}


SAID = {  # what the line says, beside the URL or the source
    "html": lambda source: "malformed JSON",
    "wrong-shape": lambda source: source.spec.id,  # the collector's CollectorError names its source
    "server-error": lambda source: "Graph error 2" if source.platform in ("facebook", "instagram") else "HTTP 50",
}


@ALL
@pytest.mark.parametrize("broken", list(BROKEN))
def test_a_broken_answer_fails_only_its_source_with_one_clear_line(tmp_path, source, broken):
    settings = settings_for(tmp_path, source)
    with api_mock() as router:
        source.extra(router)
        serve_beta(router)
        router.get(source.url).mock(return_value=BROKEN[broken](source))
        outcomes = run_harvest(settings)
    outcome = outcomes[source.spec.id]
    # X takes a 5xx as a stop, not a failure: a Problem (the source is partial) and a cursor that resumes.
    expected = "partial" if (source.key, broken) == ("x-mentions", "server-error") else "failed"
    assert outcome.status == expected and len(outcome.errors) == 1, outcome.errors
    one_line_naming(outcome.errors[0], source)
    assert SAID[broken](source) in outcome.errors[0], outcome.errors[0]
    assert stored(settings, source.spec.id) == {}
    assert_beta_unaffected(outcomes, settings)
    with open_store(settings.db_path, read_only=True) as store:
        errors = store.con.execute("SELECT source_id FROM run_errors").fetchall()
    assert errors == [(source.spec.id,)]


# -- (5) a deleted post stays provable ------------------------------------------------------------------

@ALL
def test_a_post_deleted_after_it_was_collected_keeps_its_item_text_and_snapshot(tmp_path, source):
    settings, posts = settings_for(tmp_path, source), source.posts()
    deleted = posts[1]
    with api_mock() as router:
        source.extra(router)
        serve_beta(router)
        router.get(source.url).mock(return_value=source.answer(posts[1:4]))
        first = run_harvest(settings)
    assert first[source.spec.id].status == "ok"
    before = stored(settings, source.spec.id)[source.native_id(deleted)]

    with api_mock() as router:  # the next night: the post is gone from the platform's answer
        source.extra(router)
        serve_beta(router)
        router.get(source.url).mock(return_value=source.answer([posts[0]] + posts[2:4]))
        second = run_harvest(settings)
    assert second[source.spec.id].status == "ok"

    gone_id = item_id(source.platform, source.native_id(deleted))
    with open_store(settings.db_path, read_only=True) as store:
        (text,) = store.con.execute("SELECT text FROM items WHERE id = ?", [gone_id]).fetchone()
        hashes = [h for (h,) in store.con.execute("SELECT hash FROM snapshots WHERE item_id = ?", [gone_id]).fetchall()]
        bodies = [store.snapshot_body(gone_id, h) for h in hashes]
    assert text == before and text  # the words cited are still there
    assert len(bodies) == 1 and json.loads(bodies[0]) in (deleted, {"post": deleted})  # the platform's own record
    assert source.native_id(posts[0]) in stored(settings, source.spec.id)  # the new post came in too


# -- bugs these scenarios showed (fixed) --------------------------------------------------------------

def test_bluesky_author_feed_still_asks_only_for_what_is_new_after_its_newest_post_was_deleted(tmp_path):
    source = BY_KEY["bluesky"]
    settings, posts = settings_for(tmp_path, source), source.posts()
    with api_mock() as router:
        router.get(APPVIEW).mock(return_value=source.answer(posts[1:4]))
        _, _, cursor = collect(source, settings)
    assert cursor["newest_uri"] == posts[1]["uri"]
    with api_mock() as router:  # posts[1] was deleted, posts[0] is new
        route = router.get(APPVIEW).mock(side_effect=[source.answer([posts[0]] + posts[2:4], more=True),
                                                      source.answer(posts[4:])])
        items, _, _ = collect(source, settings, cursor=cursor)
    assert [i.native_id for i in items] == [posts[0]["uri"]] and route.call_count == 1


@pytest.mark.parametrize("key", ["facebook-tagged", "instagram-tags"])
def test_a_graph_outage_is_not_reported_as_a_refusal_of_access(tmp_path, key):
    source = BY_KEY[key]
    with api_mock() as router:
        router.get(source.url).mock(return_value=GRAPH_500)
        try:
            _, problems, _ = collect(source, settings_for(tmp_path, source))
            said = " ".join(str(p.error) for p in problems)
        except Exception as exc:  # noqa: BLE001 - a failed source or a Problem: either may say it
            said = str(exc)
    assert "Graph error 2" in said or "HTTP 500" in said
    assert "refused" not in said
