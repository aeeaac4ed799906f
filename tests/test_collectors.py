"""Collectors on recorded real bodies (parse, no HTTP) and through respx (paging, cursors, failures)."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
import respx

from harvester.collectors import CollectRequest
from harvester.collectors import bluesky, feed, mastodon
from harvester.errors import CollectorError, FetchError
from harvester.web.client import build_client
from harvester.items import Item, NextCursor
from harvester.config.registry import SourceSpec
from harvester.config.settings import HarvestSettings, HttpSettings
from harvester.demo import DEMO
from tests.conftest import shared_or_skip

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
APPVIEW = "https://public.api.bsky.app/xrpc/app.bsky.feed.getAuthorFeed"


def public_http(sleeps=None):
    """The real client, with DNS answered by a public address so respx can stand in for the service."""
    return build_client(HttpSettings(retries=1, backoff_seconds=0.01), HarvestSettings(delay_seconds=0), resolve=lambda host: ["93.184.216.34"],
                        sleep=(sleeps.append if sleeps is not None else lambda s: None))


def run(collect, spec, settings, cursor=None, http=None):
    events = list(collect(CollectRequest(source=spec, cursor=cursor or {}, http=http or public_http(), settings=settings)))
    return [e for e in events if isinstance(e, Item)], next(e.value for e in events if isinstance(e, NextCursor))


# -- parsing recorded real bodies -------------------------------------------------------------------

def test_bluesky_author_feed_sample_parses_and_skips_reposts():
    data = json.loads(shared_or_skip("samples", "bluesky", "getAuthorFeed.json").read_text(encoding="utf-8"))
    items = [bluesky.parse_feed_item(e, org_id="o", source_id="o/bluesky/x", fetched_at=NOW) for e in data["feed"]]
    kept = [i for i in items if i is not None]
    assert len(kept) == len(data["feed"]) - sum(1 for e in data["feed"] if e.get("reason"))
    first = kept[0]
    assert first.url.startswith("https://bsky.app/profile/") and first.published.tzinfo is not None
    assert json.loads(first.snapshot.body)["post"]["uri"] == first.native_id


def test_mastodon_status_samples_parse_with_mentions_and_text():
    statuses = json.loads(shared_or_skip("samples", "mastodon", "account-statuses-page1.json").read_text(encoding="utf-8"))
    items = [mastodon.parse_status(s, org_id="o", source_id="o/mastodon/x", fetched_at=NOW) for s in statuses]
    assert all(i.text and "<p>" not in i.text for i in items)
    federated = json.loads(shared_or_skip("samples", "mastodon", "status-mention-hashtag-media-federated.json")
                           .read_text(encoding="utf-8"))
    item = mastodon.parse_status(federated, org_id="o", source_id="s", fetched_at=NOW)
    assert item.author == federated["account"]["acct"] and item.native_id == federated["uri"]


def test_youtube_and_mastodon_rss_samples_parse():
    for name in ("youtube/channel-videos-feed.xml", "mastodon/tag-rss-hachyderm-kubernetes.xml"):
        body = shared_or_skip("samples", *name.split("/")).read_bytes()
        items = feed.parse_feed(body, "https://example.org/feed", org_id="o", source_id="o/feed/x", platform="feed")
        assert items and all(i.native_id and i.url and i.published for i in items)


RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>News</title><link>https://g.example/</link><description>d</description>
<item><title>Our pledge</title><link>https://g.example/news/pledge/?utm_source=rss</link><guid>https://g.example/?p=1</guid>
<pubDate>Tue, 10 Feb 2026 09:00:00 +0000</pubDate><description>&lt;p&gt;We signed the pledge. Follow us @iCCQM&lt;/p&gt;</description></item>
<item><title>Tagged by category</title><link>https://g.example/news/assembly/</link><category>iCCQM</category>
<pubDate>Thu, 12 Mar 2026 09:00:00 +0000</pubDate><description>Our awareness assembly.</description></item>
<item><title>Sports day</title><link>https://g.example/news/sports-day/</link>
<pubDate>Fri, 26 Jun 2026 09:00:00 +0000</pubDate><description>Blue house won. Email head@iccqmschool.example</description></item>
</channel></rss>"""


def test_feed_entries_tagging_the_scheme_are_flagged_and_links_canonical():
    items = feed.parse_feed(RSS, "https://g.example/feed.xml", org_id="o", source_id="s", platform="feed")
    assert [i.tags_scheme for i in items] == [True, True, False]
    assert items[0].url == "https://g.example/news/pledge/"  # tracking parameters dropped
    assert items[0].text == "We signed the pledge. Follow us @iCCQM"
    assert items[0].published == dt.datetime(2026, 2, 10, 9, tzinfo=dt.timezone.utc)


def test_mastodon_handles_parse_both_ways():
    assert mastodon.parse_handle("@news@example.social") == ("https://example.social", "news")
    assert mastodon.parse_handle("https://mastodon.social/@greenfield") == ("https://mastodon.social", "greenfield")
    assert mastodon.parse_handle("greenfield") is None


# -- Bluesky through respx, on the demo world's real-shaped bodies ----------------------------------

def author_feed():
    return json.loads((DEMO / "world" / "bluesky" / "getAuthorFeed" / "greenfieldprimary.bsky.social.json")
                      .read_text(encoding="utf-8"))["feed"]


def test_bluesky_follows_the_cursor_then_asks_only_for_what_is_new(demo_settings):
    posts = author_feed()
    spec = SourceSpec("greenfield-primary", "bluesky", "greenfieldprimary.bsky.social")
    settings = demo_settings.__class__(**{**demo_settings.__dict__, "platforms": demo_settings.platforms.__class__()})
    with respx.mock(assert_all_called=True) as router:
        route = router.get(APPVIEW).mock(side_effect=[
            httpx.Response(200, json={"feed": posts[:3], "cursor": "page2"}),
            httpx.Response(200, json={"feed": posts[3:]}),
        ])
        items, cursor = run(bluesky.collect, spec, settings)
        assert len(items) == len(posts)
        assert route.calls[1].request.url.params["cursor"] == "page2"
        assert cursor["newest_uri"] == posts[0]["post"]["uri"]

    new_post = json.loads(json.dumps(posts[0]))
    new_post["post"]["uri"] = posts[0]["post"]["uri"][:-3] + "zzz"
    new_post["post"]["record"]["text"] = "Our progress update: up from 68% to 84% #iCCQM"
    with respx.mock() as router:
        route = router.get(APPVIEW).mock(return_value=httpx.Response(200, json={"feed": [new_post] + posts, "cursor": "more"}))
        items, cursor2 = run(bluesky.collect, spec, settings, cursor=cursor)
        assert [i.native_id for i in items] == [new_post["post"]["uri"]]
        assert route.call_count == 1  # stopped at the newest post it already had
        assert cursor2["newest_uri"] == new_post["post"]["uri"]


def test_bluesky_malformed_body_and_server_error_fail_that_source_clearly(demo_settings):
    spec = SourceSpec("greenfield-primary", "bluesky", "greenfieldprimary.bsky.social")
    settings = demo_settings.__class__(**{**demo_settings.__dict__, "platforms": demo_settings.platforms.__class__()})
    with respx.mock() as router:
        router.get(APPVIEW).mock(return_value=httpx.Response(200, json={"posts": "nope"}))
        with pytest.raises(CollectorError, match="greenfield-primary/bluesky/greenfieldprimary.bsky.social.*no feed list"):
            run(bluesky.collect, spec, settings)
    sleeps: list[float] = []
    with respx.mock() as router:
        route = router.get(APPVIEW).mock(return_value=httpx.Response(500, text="upstream down"))
        with pytest.raises(FetchError, match="HTTP 500"):
            run(bluesky.collect, spec, settings, http=public_http(sleeps))
        assert route.call_count == 2 and len(sleeps) == 1  # one retry after a backoff


# -- Mastodon through respx: Link paging first, then min_id ------------------------------------------

def test_mastodon_pages_by_link_then_asks_from_min_id(demo_settings):
    base = "https://example.social"
    statuses = json.loads((DEMO / "world" / "mastodon" / "accounts" / "115140809884801324" / "statuses.json")
                          .read_text(encoding="utf-8").replace("{{origin}}", base))
    account = json.loads((DEMO / "world" / "mastodon" / "accounts" / "lookup" / "greenfieldprimary.json")
                         .read_text(encoding="utf-8").replace("{{origin}}", base))
    url = f"{base}/api/v1/accounts/{account['id']}/statuses"
    spec = SourceSpec("greenfield-primary", "mastodon", "@greenfieldprimary@example.social")
    with respx.mock() as router:
        router.get(f"{base}/api/v1/accounts/lookup").mock(return_value=httpx.Response(200, json=account))
        route = router.get(url).mock(side_effect=[
            httpx.Response(200, json=statuses[:5], headers={"link": f'<{url}?max_id={statuses[4]["id"]}>; rel="next"'}),
            httpx.Response(200, json=statuses[5:], headers={"link": f'<{url}?max_id={statuses[-1]["id"]}>; rel="next"'}),
            httpx.Response(200, json=[]),
        ])
        items, cursor = run(mastodon.collect, spec, demo_settings)
        assert len(items) == len(statuses) and route.call_count == 3
        assert cursor == {"account_id": account["id"], "min_id": statuses[0]["id"]}
    with respx.mock() as router:
        route = router.get(url).mock(return_value=httpx.Response(200, json=[]))
        items, _ = run(mastodon.collect, spec, demo_settings, cursor=cursor)
        assert items == [] and route.calls[0].request.url.params["min_id"] == statuses[0]["id"]


def test_mastodon_unknown_account_is_a_clear_error(demo_settings):
    spec = SourceSpec("o", "mastodon", "@nobody@example.social")
    with respx.mock() as router:
        router.get("https://example.social/api/v1/accounts/lookup").mock(
            return_value=httpx.Response(404, json={"error": "Record not found"}))
        with pytest.raises(CollectorError, match="account 'nobody' not found"):
            run(mastodon.collect, spec, demo_settings)


def test_a_feed_url_answering_html_or_junk_fails_clearly():
    for body in (b"<html><body><h1>Welcome</h1></body></html>", b"{not json", b'{"items": 3}'):
        with pytest.raises(CollectorError, match="o/feed/x.*not a feed"):
            feed.parse_feed(body, "https://g.example/feed", org_id="o", source_id="o/feed/x", platform="feed")


def test_params_are_added_to_a_query_the_url_already_has():
    with respx.mock() as router:
        route = router.get("https://api.example/x").mock(return_value=httpx.Response(200, json={}))
        public_http().get_json("https://api.example/x?keep=1", params={"limit": 40})
        assert dict(route.calls[0].request.url.params) == {"keep": "1", "limit": "40"}
