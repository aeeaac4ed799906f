"""The scheme's own sources: posts that tag @iCCQM are collected once for the whole scheme, credited
to the organisation whose account wrote them, and the rest wait in an unattributed list that a
validator resolves with `ccqm orgs link`."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat

import httpx
import pytest
import respx

from harvester.app.handles import platform_of
from harvester.collectors import CollectRequest, bluesky
from harvester.config.registry import SCHEME, SourceSpec
from harvester.config.scheme import normal_handle, scheme_sources
from harvester.config.settings import SchemeSettings
from harvester.errors import NotConnected
from harvester.items import NextCursor
from harvester.store.db import open_store
from reports.build import index_page
from reports.render import render_index
from tests.test_collectors import public_http
from tests.test_config import run_ccqm


def tagged_posts(settings) -> list[tuple]:
    with open_store(settings.db_path, read_only=True) as store:
        return store.con.execute(
            "SELECT i.id, i.author, i.author_id, list(a.org_id ORDER BY a.org_id), list(a.how ORDER BY a.org_id) "
            "FROM items i LEFT JOIN attributions a ON a.item_id = i.id "
            "WHERE i.platform = 'mastodon' AND i.text LIKE '%iCCQM%' GROUP BY ALL ORDER BY i.author").fetchall()


# -- handles -------------------------------------------------------------------------------------

@pytest.mark.parametrize("platform, given, url, expected", [
    ("mastodon", "@Greenfield@Mastodon.Social", None, "greenfield@mastodon.social"),
    ("mastodon", "https://mastodon.social/@greenfield", None, "greenfield@mastodon.social"),
    ("mastodon", "greenfield", "https://mastodon.social/@greenfield/11", "greenfield@mastodon.social"),
    ("bluesky", "https://bsky.app/profile/Riverside.bsky.social", None, "riverside.bsky.social"),
    ("x", "https://x.com/ExampleCouncil", None, "examplecouncil"),
    ("x", "@ExampleCouncil", None, "examplecouncil"),
    ("facebook", "https://www.facebook.com/profile.php?id=100064123456789", None, "100064123456789"),
])
def test_one_account_has_one_spelling_however_it_is_written(platform, given, url, expected):
    assert normal_handle(platform, given, url) == expected


@pytest.mark.parametrize("handle, platform", [
    ("@riversidelarder@mastodon.social", "mastodon"), ("https://mastodon.social/@larder", "mastodon"),
    ("riversidelarder.bsky.social", "bluesky"), ("https://www.facebook.com/riversidelarder", "facebook"),
    ("https://twitter.com/larder", "x"), ("https://www.instagram.com/larder/", "instagram"),
])
def test_the_platform_of_a_handle_is_read_from_its_form(handle, platform):
    assert platform_of(handle) == platform


def test_no_scheme_source_until_the_scheme_is_configured():
    assert scheme_sources(SchemeSettings()) == ()  # a fresh config reaches out to no one's servers
    specs = scheme_sources(SchemeSettings(mastodon_servers=("https://mastodon.social",), bluesky_handle="iccqm.bsky.social",
                                          x_user_id="123"))
    assert {s.platform for s in specs} == {"mastodon-tag", "bluesky-search", "x-mentions", "x-search"}
    assert all(s.org_id == SCHEME for s in specs)


# -- the demo world: a tag timeline beside the organisations' own accounts --------------------------

def test_a_post_reached_from_its_author_and_from_the_tag_is_one_item_credited_to_its_author(harvested):
    rows = {r[1]: r for r in tagged_posts(harvested.settings)}
    greenfield = [r for r in tagged_posts(harvested.settings) if r[1] == "greenfieldprimary"]
    ids = [r[0] for r in greenfield]
    assert len(ids) == len(set(ids))  # no duplicate of the post the tag timeline also holds
    assert all(r[3] == ["greenfield-primary"] for r in greenfield)
    assert rows["stmarksyouthclub"][3] == [None]  # an author no organisation owns: nobody's evidence
    assert rows["stmarksyouthclub"][2].endswith("/@stmarksyouthclub")  # the platform id is kept


def test_unknown_authors_are_listed_for_validators_on_the_cli_and_the_index(harvested):
    result = run_ccqm("--config", str(harvested.settings.config_dir), "--db", str(harvested.settings.db_path),
                      "orgs", "unattributed", "--json")
    assert result.returncode == 0, result.stdout
    authors = {r["author"] for r in json.loads(result.stdout)}
    # unknown accounts on Mastodon, Facebook and X (a retweet of a mention is nobody's evidence)
    assert authors == {"stmarksyouthclub", "riversidelarder", "HollybankCC", "Northbridge Interfaith Forum"}
    index = (harvested.settings.dossier_dir / "index.html").read_text(encoding="utf-8")
    assert "unknown authors (4)" in index and "stmarksyouthclub" in index and "ccqm orgs link" in index


def test_linking_a_handle_makes_its_posts_that_organisations_evidence(harvested_copy):
    args = ["--config", str(harvested_copy.config_dir), "--db", str(harvested_copy.db_path)]
    before = json.loads(run_ccqm(*args, *["orgs", "unattributed", "--json"]).stdout)
    url = next(r["url"] for r in before if r["author"] == "riversidelarder")
    profile = url.rsplit("/", 1)[0]  # http://127.0.0.1:PORT/@riversidelarder

    result = run_ccqm(*args, *["orgs", "link", profile, "riverside-larder", "--by", "a.validator"])
    assert result.returncode == 0, result.stdout
    assert "1 stored post(s) attributed" in result.stdout
    after = json.loads(run_ccqm(*args, *["orgs", "unattributed", "--json"]).stdout)
    assert "riversidelarder" not in [r["author"] for r in after] and len(after) == len(before) - 1
    with open_store(harvested_copy.db_path, read_only=True) as store:
        owned = [i for i in store.items_for("riverside-larder") if i["author"] == "riversidelarder"]
        assert len(owned) == 1 and store.attributions(owned[0]["id"]) == [("riverside-larder", "linked handle")]
    # the validator's link outlives the next sync of the registry, and the next harvest credits new posts
    with open_store(harvested_copy.db_path) as store:
        store.sync_organisations(harvested_copy.organisations, dt.datetime.now(dt.timezone.utc))
        assert store.con.execute("SELECT org_id, how FROM handles WHERE handle LIKE 'riversidelarder@127.0.0.1'").fetchall() \
            == [("riverside-larder", "linked by a.validator")]


def test_linking_to_an_unknown_organisation_is_a_usage_error(harvested_copy):
    args = ["--config", str(harvested_copy.config_dir), "--db", str(harvested_copy.db_path)]
    result = run_ccqm(*args, *["orgs", "link", "@someone@mastodon.social", "no-such-org"])
    assert result.returncode == 2 and "no-such-org" in result.stderr


def test_an_unattributed_post_reaches_the_index_escaped():
    hostile = {"platform": "mastodon", "author": "<b>x</b>", "url": "javascript:alert(1)",
               "text": "<script>alert('pwned')</script> #iCCQM", "published_at": None,
               "first_seen": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)}
    html = render_index(index_page([], ("A",), dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc), [hostile]))
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "javascript:" not in html


# -- Bluesky search: a login kept and refreshed, never in a URL ------------------------------------

PDS = "https://pds.example"


@pytest.fixture
def search_request(tmp_path, demo_settings):
    import dataclasses

    bluesky._sessions.clear()
    settings = dataclasses.replace(
        demo_settings, db_path=tmp_path / "ccqm.duckdb",
        platforms=dataclasses.replace(demo_settings.platforms, bluesky_pds_url=PDS))

    def make(cursor=None):
        return CollectRequest(source=SourceSpec(SCHEME, "bluesky-search", "iccqm.bsky.social"), cursor=cursor or {},
                              http=public_http(), settings=settings)
    yield make
    bluesky._sessions.clear()


def hit(n: int, author: str = "stmarks.bsky.social") -> dict:
    return {"uri": f"at://did:plc:{author[:5]}/app.bsky.feed.post/{n}", "cid": f"c{n}",
            "author": {"did": f"did:plc:{author[:5]}", "handle": author},
            "record": {"$type": "app.bsky.feed.post", "text": f"Post {n} about our CCQM pledge #iCCQM",
                       "createdAt": f"2026-11-2{n}T10:00:00.000Z"},
            "indexedAt": f"2026-11-2{n}T10:00:01.000Z", "likeCount": 0, "repostCount": 0, "replyCount": 0}


def test_search_without_a_login_is_skipped_naming_the_variables(search_request, monkeypatch):
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    monkeypatch.delenv("BLUESKY_APP_PASSWORD", raising=False)
    with respx.mock(assert_all_called=False) as router:
        route = router.route(host="pds.example")
        with pytest.raises(NotConnected, match="BLUESKY_APP_PASSWORD"):
            list(bluesky.collect_search(search_request()))
    assert not route.called


def test_search_logs_in_once_then_refreshes_the_saved_session(search_request, monkeypatch, tmp_path):
    monkeypatch.setenv("BLUESKY_HANDLE", "iccqm.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "app-pass-1234")
    session = {"did": "did:plc:iccqm", "handle": "iccqm.bsky.social", "accessJwt": "ACCESS1", "refreshJwt": "REFRESH1"}
    with respx.mock() as router:
        login = router.post(f"{PDS}/xrpc/com.atproto.server.createSession").mock(
            return_value=httpx.Response(200, json=session))
        refresh = router.post(f"{PDS}/xrpc/com.atproto.server.refreshSession").mock(
            return_value=httpx.Response(200, json={**session, "accessJwt": "ACCESS2", "refreshJwt": "REFRESH2"}))
        search = router.get(f"{PDS}/xrpc/app.bsky.feed.searchPosts").mock(side_effect=lambda request: httpx.Response(
            200, json={"posts": [hit(2), hit(1)] if "mentions" in request.url.params else [hit(2)]}))

        events = list(bluesky.collect_search(search_request()))
        items = [e for e in events if not isinstance(e, NextCursor)]
        assert [i.native_id for i in items] == [hit(2)["uri"], hit(1)["uri"]]  # the tag search's repeat is one item
        assert items[0].author == "stmarks.bsky.social" and items[0].author_id == "did:plc:stmar"
        assert items[0].org_id == SCHEME
        assert login.call_count == 1 and refresh.call_count == 0
        assert json.loads(login.calls[0].request.content) == {"identifier": "iccqm.bsky.social",
                                                              "password": "app-pass-1234"}
        assert all(c.request.headers["Authorization"] == "Bearer ACCESS1" for c in search.calls)
        assert all("ACCESS" not in str(c.request.url) and "app-pass" not in str(c.request.url) for c in search.calls)
        saved = tmp_path / "ccqm.duckdb.bluesky-session"
        assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600  # a credential: its owner only
        cursor = events[-1].value
        assert cursor["since"] == "2026-11-22T10:00:01.000Z"

        bluesky._sessions.clear()  # the next night's run, a new process
        list(bluesky.collect_search(search_request(cursor)))
        assert login.call_count == 1 and refresh.call_count == 1  # refreshed, not logged in again
        assert refresh.calls[0].request.headers["Authorization"] == "Bearer REFRESH1"
        assert search.calls[-1].request.url.params["since"] == "2026-11-22T10:00:01.000Z"
        assert search.calls[-1].request.headers["Authorization"] == "Bearer ACCESS2"


# -- whose account is it: the website's links, or a validator ----------------------------------------

def test_accounts_the_website_links_to_are_verified_and_others_are_marked_on_the_dossier(harvested):
    with open_store(harvested.settings.db_path, read_only=True) as store:
        verified = store.verified_handles("greenfield-primary")
    assert ("bluesky", "greenfieldprimary.bsky.social") in verified  # its home page links there
    assert not any(p == "mastodon" and h.endswith("@127.0.0.1") for p, h in verified)  # declared only
    page = (harvested.settings.dossier_dir / "greenfield-primary.html").read_text(encoding="utf-8")
    rows = [r for r in page.split("<tr id=\"item-")[1:]]
    mastodon = [r for r in rows if "<td>mastodon</td>" in r]
    bluesky_rows = [r for r in rows if "<td>bluesky</td>" in r]
    assert mastodon and all("unverified account" in r for r in mastodon)
    assert bluesky_rows and not any("unverified account" in r for r in bluesky_rows)
    assert not any("unverified account" in r for r in rows if "<td>website</td>" in r)


def test_a_handle_the_website_links_to_but_the_registry_omits_is_learnt(harvested):
    with open_store(harvested.settings.db_path, read_only=True) as store:
        learnt = store.con.execute("SELECT org_id, how, verified_by FROM handles WHERE platform = 'bluesky' "
                                   "AND handle = 'castlegatelogistics.bsky.social'").fetchall()
    assert learnt == [("castlegate-logistics", "website", "website")]


@pytest.mark.parametrize("url, profile", [
    ("https://www.facebook.com/riversidelarder", ("facebook", "riversidelarder")),
    ("https://www.facebook.com/sharer/sharer.php?u=https://example.org", None),
    ("https://twitter.com/intent/tweet?text=hi", None),
    ("https://mastodon.social/@greenfield", ("mastodon", "greenfield@mastodon.social")),
    ("https://mastodon.social/@greenfield/1234", None),
    ("https://www.instagram.com/p/Cabc123/", None),
    ("https://bsky.app/profile/g.bsky.social/post/3k", None),
])
def test_only_profile_links_count_not_share_buttons_or_posts(url, profile):
    from harvester.config.scheme import profile_of

    assert profile_of(url) == profile


def test_a_scheme_source_without_its_login_is_skipped_and_the_run_stays_ok(demo_settings, monkeypatch):
    import dataclasses

    from harvester.app.harvest import harvest

    monkeypatch.delenv("BLUESKY_APP_PASSWORD", raising=False)
    settings = dataclasses.replace(demo_settings, scheme=dataclasses.replace(
        demo_settings.scheme, bluesky_handle="iccqm.bsky.social"))
    report = harvest(settings, settings.organisations[:1], scheme=True)
    search = [o for o in report.outcomes if o.source.platform == "bluesky-search"]
    assert [o.status for o in search] == ["skipped"] and "BLUESKY_APP_PASSWORD" in search[0].errors[0]
    tag = [o for o in report.outcomes if o.source.platform == "mastodon-tag"]
    assert [o.status for o in tag] == ["ok"] and tag[0].counts["new"] == 3
    assert not report.failed


# -- Mastodon: the scheme account's own mentions, through its notifications ---------------------------

def test_mentions_of_the_scheme_account_are_read_from_its_notifications(demo_settings, monkeypatch):
    from harvester.collectors import mastodon

    server = "https://mastodon.example"
    status = {"id": "9001", "uri": f"{server}/users/larder/statuses/9001", "url": f"{server}/@larder/9001",
              "created_at": "2026-11-25T09:00:00.000Z", "content": "<p>Our volunteer survey: 31 of 40 feel welcome "
              "@iCCQM</p>", "spoiler_text": "", "media_attachments": [], "mentions": [{"acct": "iCCQM"}], "tags": [],
              "account": {"id": "77", "acct": "larder", "url": f"{server}/@larder"}}
    spec = SourceSpec(SCHEME, "mastodon-mentions", f"@iCCQM@{server.removeprefix('https://')}")
    monkeypatch.delenv("MASTODON_TOKEN", raising=False)
    with pytest.raises(NotConnected, match="MASTODON_TOKEN"):
        list(mastodon.collect_mentions(CollectRequest(source=spec, cursor={}, http=public_http(),
                                                      settings=demo_settings)))
    monkeypatch.setenv("MASTODON_TOKEN", "scheme-token")
    with respx.mock() as router:
        route = router.get(f"{server}/api/v1/notifications").mock(side_effect=[
            httpx.Response(200, json=[{"id": "501", "type": "mention", "status": status}]), httpx.Response(200, json=[])])
        events = list(mastodon.collect_mentions(CollectRequest(source=spec, cursor={}, http=public_http(),
                                                               settings=demo_settings)))
        (item,) = [e for e in events if not isinstance(e, NextCursor)]
        assert item.native_id == status["uri"] and item.author_id == f"{server}/@larder" and item.org_id == SCHEME
        assert events[-1].value == {"min_id": "501"}  # the notification's id, not the status's
        request = route.calls[0].request
        assert request.headers["Authorization"] == "Bearer scheme-token" and "scheme-token" not in str(request.url)
        assert request.url.params["types[]"] == "mention"
        list(mastodon.collect_mentions(CollectRequest(source=spec, cursor=events[-1].value, http=public_http(),
                                                      settings=demo_settings)))
        assert route.calls[-1].request.url.params["min_id"] == "501"  # only what is new
