"""The Facebook and Instagram collectors through respx (only the Graph API is mocked), on fixtures
shaped like the real answers in ../shared/samples, and on those samples themselves."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx
import pytest
import respx

from harvester.collectors import CollectRequest
from harvester.collectors import facebook, instagram
from harvester.config.registry import SCHEME, SourceSpec
from harvester.config.settings import HarvestSettings, SchemeSettings, Settings
from harvester.errors import CollectorError, DeferredError, NotConnected
from harvester.items import Item, NextCursor, Problem, Refused
from tests.conftest import PROJECT, SHARED
from tests.test_collectors import public_http

GRAPH = "https://graph.facebook.com/v21.0"
FIXTURES = PROJECT / "fixtures" / "platforms"
TOKEN = "EAAGm0PX4ZCpsBAKtestPageToken0123456789"
SCHEME_PAGE = "108451237750213"
IG_SCHEME = "17841465012345678"
IG_GREENFIELD = "17841403456789012"
HASHTAG_ID = "17843853986012965"
NOW = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)


def fixture(platform: str, name: str) -> dict:
    return json.loads((FIXTURES / platform / name).read_text(encoding="utf-8"))


def sample(*parts: str) -> dict:
    path = SHARED.joinpath("samples", *parts)
    if not path.exists():
        pytest.skip(f"../shared/samples not present: {path} (it sits beside the project only in development and CI)")
    return json.loads(path.read_text(encoding="utf-8"))


def unix(value: str) -> int:
    return int(dt.datetime.fromisoformat(value).timestamp())


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(config_dir=tmp_path, db_path=tmp_path / "ccqm.duckdb", dossier_dir=tmp_path / "dossiers",
                    harvest=HarvestSettings(delay_seconds=0),
                    scheme=SchemeSettings(facebook_page_id=SCHEME_PAGE, instagram_user_id=IG_SCHEME))


def with_hashtags(settings: Settings, tags=("iCCQM",)) -> Settings:
    return Settings(**{**settings.__dict__, "scheme": SchemeSettings(
        facebook_page_id=SCHEME_PAGE, instagram_user_id=IG_SCHEME, instagram_hashtag_search=1, tags=tuple(tags))})


@pytest.fixture
def scheme_token(monkeypatch):
    monkeypatch.setenv("META_PAGE_TOKEN", TOKEN)


def collect(collector, spec, settings, cursor=None):
    """Every event, and (items, problems, refused, cursor) for convenience."""
    events = list(collector(CollectRequest(source=spec, cursor=cursor or {}, http=public_http(), settings=settings)))
    assert isinstance(events[-1], NextCursor), "a collector ends with one NextCursor"
    return ([e for e in events if isinstance(e, Item)], [e for e in events if isinstance(e, Problem)],
            [e for e in events if isinstance(e, Refused)], events[-1].value)


def graph_mock():
    """Only the Graph API answers; anything else asked for fails the test (respx's default)."""
    return respx.mock(assert_all_called=False)


def graph_error(platform: str, name: str, status: int = 400) -> httpx.Response:
    return httpx.Response(status, json=fixture(platform, name))


TAGGED = SourceSpec(SCHEME, "facebook-tagged", SCHEME_PAGE)
IG_TAGS = SourceSpec(SCHEME, "instagram-tags", IG_SCHEME)


# -- Facebook: the scheme Page's /tagged -------------------------------------------------------------

def test_tagged_pages_to_the_last_page_and_saves_since(settings, scheme_token):
    p1, p2 = fixture("facebook", "page-tagged-p1.json"), fixture("facebook", "page-tagged-p2-last.json")
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(
            side_effect=[httpx.Response(200, json=p1), httpx.Response(200, json=p2)])
        items, problems, refused, cursor = collect(facebook.collect_tagged, TAGGED, settings)
    assert [i.native_id for i in items] == [p["id"] for p in p1["data"] + p2["data"]]
    assert route.call_count == 2 and not problems and not refused
    first = route.calls[0].request.url
    assert "created_time" in first.params["fields"] and first.params["limit"] == "100" and "since" not in first.params
    assert str(route.calls[1].request.url) == facebook.without_token(p1["paging"]["next"])  # followed as given
    assert cursor == {"since": unix(p1["data"][0]["created_time"])}
    assert all(i.platform == "facebook" and i.kind == "post" and i.tags_scheme for i in items)
    school = items[0]
    assert (school.author, school.author_id) == ("Greenfield Primary School", "100064512345678")
    assert school.url == p1["data"][0]["permalink_url"]
    assert school.text.endswith("in the school hall.")  # the photo's description follows the message
    assert school.published == dt.datetime(2026, 11, 20, 9, 15, tzinfo=dt.timezone.utc)
    assert json.loads(school.snapshot.body)["id"] == school.native_id


def test_a_post_written_by_a_person_hides_its_author(settings, scheme_token):
    page = fixture("facebook", "page-tagged-p1.json")
    hidden = next(p for p in page["data"] if "from" not in p)
    item = facebook.parse_post(hidden, org_id=SCHEME, source_id=TAGGED.id, fetched_at=NOW)
    assert item.author is None and item.author_id is None
    assert item.tags_scheme and "@iCCQM" in item.text


def test_token_goes_in_the_authorization_header_never_in_a_url(settings, scheme_token):
    p1, p2 = fixture("facebook", "page-tagged-p1.json"), fixture("facebook", "page-tagged-p2-last.json")
    assert "access_token=" in p1["paging"]["next"]  # Graph copies the credential into its paging links
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(
            side_effect=[httpx.Response(200, json=p1), httpx.Response(200, json=p2)])
        items, _, _, cursor = collect(facebook.collect_tagged, TAGGED, settings)
    for call in route.calls:
        assert call.request.headers["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in str(call.request.url) and "access_token" not in str(call.request.url)
    assert all(TOKEN not in (i.snapshot.url + i.url) for i in items) and TOKEN not in json.dumps(cursor)


def test_second_run_sends_since_and_stops_at_what_it_has(settings, scheme_token):
    p1 = fixture("facebook", "page-tagged-p1.json")
    since = unix(p1["data"][1]["created_time"])
    page = {"data": p1["data"], "paging": p1["paging"]}  # newest first: the third is older than `since`
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(200, json=page))
        items, _, _, cursor = collect(facebook.collect_tagged, TAGGED, settings, cursor={"since": since})
    assert route.calls[0].request.url.params["since"] == str(since)
    assert route.call_count == 1  # reached the saved cursor: no next page
    assert [i.native_id for i in items] == [p["id"] for p in p1["data"][:2]]
    assert cursor == {"since": unix(p1["data"][0]["created_time"])}


def test_a_run_with_nothing_new_keeps_its_cursor(settings, scheme_token):
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(200, json={"data": []}))
        items, _, _, cursor = collect(facebook.collect_tagged, TAGGED, settings, cursor={"since": 1795000000})
    assert items == [] and cursor == {"since": 1795000000}


def test_max_posts_per_source_stops_the_walk(settings, scheme_token):
    settings = Settings(**{**settings.__dict__, "harvest": HarvestSettings(delay_seconds=0, max_posts_per_source=2)})
    p1 = fixture("facebook", "page-tagged-p1.json")
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(200, json=p1))
        items, _, _, cursor = collect(facebook.collect_tagged, TAGGED, settings)
    assert len(items) == 2 and route.call_count == 1 and route.calls[0].request.url.params["limit"] == "2"
    assert cursor == {"since": unix(p1["data"][0]["created_time"])}


def test_missing_tokens_say_which_variable_would_connect_the_source(settings, monkeypatch):
    for name in ("META_PAGE_TOKEN", "META_PAGE_TOKEN_GREENFIELD_PRIMARY"):
        monkeypatch.delenv(name, raising=False)
    cases = [(facebook.collect_tagged, TAGGED, "META_PAGE_TOKEN to collect posts that tag the scheme's Facebook Page"),
             (facebook.collect, SourceSpec("greenfield-primary", "facebook", "https://www.facebook.com/greenfieldprimary"),
              "META_PAGE_TOKEN_GREENFIELD_PRIMARY"),
             (instagram.collect_tags, IG_TAGS, "META_PAGE_TOKEN"),
             (instagram.collect, SourceSpec("greenfield-primary", "instagram", IG_GREENFIELD),
              "META_PAGE_TOKEN_GREENFIELD_PRIMARY")]
    with graph_mock() as router:  # nothing may be asked without a token
        for collector, spec, variable in cases:
            with pytest.raises(NotConnected, match=f"set {variable}"):
                collect(collector, spec, settings)
        assert not router.calls


@pytest.mark.parametrize("error", ["error-throttled-code4.json", "error-throttled-code80001.json"])
def test_throttling_mid_walk_is_a_problem_and_a_resumable_cursor(settings, scheme_token, error):
    p1, p2 = fixture("facebook", "page-tagged-p1.json"), fixture("facebook", "page-tagged-p2-last.json")
    code = fixture("facebook", error)["error"]["code"]
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(
            side_effect=[httpx.Response(200, json=p1), graph_error("facebook", error)])
        items, problems, _, cursor = collect(facebook.collect_tagged, TAGGED, settings, cursor={"since": 1790000000})
    assert len(items) == len(p1["data"]) and len(problems) == 1
    problem = problems[0]
    assert isinstance(problem.error, DeferredError)
    assert f"Facebook throttled this app (code {code}); the rest waits for the next run" in str(problem.error)
    assert TOKEN not in str(problem.error) and TOKEN not in problem.url
    next_url = facebook.without_token(p1["paging"]["next"])
    assert cursor == {"since": 1790000000, "resume": {"next": next_url, "newest": unix(p1["data"][0]["created_time"])}}

    with graph_mock() as router:  # the next run carries on from the page that was refused
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(200, json=p2))
        items, problems, _, cursor = collect(facebook.collect_tagged, TAGGED, settings, cursor=cursor)
    assert str(route.calls[0].request.url) == next_url
    assert [i.native_id for i in items] == [p["id"] for p in p2["data"]] and not problems
    assert cursor == {"since": unix(p1["data"][0]["created_time"])}


def test_throttled_on_the_first_page_keeps_the_cursor_as_it_was(settings, scheme_token):
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=graph_error("facebook", "error-throttled-code4.json"))
        items, problems, _, cursor = collect(facebook.collect_tagged, TAGGED, settings, cursor={"since": 1790000000})
    assert items == [] and len(problems) == 1 and cursor == {"since": 1790000000}


def test_a_bare_429_is_throttling_too(settings, scheme_token):
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(429, text="slow down"))
        items, problems, _, cursor = collect(facebook.collect_tagged, TAGGED, settings)
    assert route.call_count == 2  # the client's one retry, then the source stops cleanly
    assert items == [] and cursor == {} and "Facebook throttled this app (HTTP 429)" in str(problems[0].error)


@pytest.mark.parametrize("error, expected", [
    ("error-permission-code10.json", "META_PAGE_TOKEN needs 'pages_read_user_content' or 'Page Public Content Access'"),
    ("error-token-expired-code190.json", "refused the token in META_PAGE_TOKEN (Graph error 190/463): it is invalid or has expired"),
])
def test_permission_errors_name_what_is_missing_in_one_line(settings, scheme_token, error, expected):
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=graph_error("facebook", error, 403))
        with pytest.raises(CollectorError) as caught:
            collect(facebook.collect_tagged, TAGGED, settings)
    message = str(caught.value)
    assert expected in message and "\n" not in message and "Refer to" not in message
    assert message.startswith(f"{TAGGED.id}: {GRAPH}/{SCHEME_PAGE}/tagged") and TOKEN not in message


def test_a_graph_error_that_echoes_the_token_does_not_repeat_it(settings, scheme_token):
    body = fixture("facebook", "error-token-expired-code190.json")
    body["error"].update(message=f"Malformed access token {TOKEN}", error_subcode=None)
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(400, json=body))
        with pytest.raises(CollectorError, match="Malformed access token") as caught:
            collect(facebook.collect_tagged, TAGGED, settings)
    assert TOKEN not in str(caught.value) and TOKEN[:12] not in str(caught.value)


@pytest.mark.parametrize("body", [{"posts": []}, [1, 2], {"error": {"message": "no code"}}])
def test_unexpected_shapes_are_collector_errors(settings, scheme_token, body):
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(200, json=body))
        with pytest.raises(CollectorError, match=TAGGED.id):
            collect(facebook.collect_tagged, TAGGED, settings)


def test_a_paging_link_to_another_host_is_not_followed(settings, scheme_token):
    p1 = fixture("facebook", "page-tagged-p1.json")
    p1["paging"]["next"] = p1["paging"]["next"].replace("https://graph.facebook.com", "https://graph.facebook.com.evil.example")
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(return_value=httpx.Response(200, json=p1))
        evil = router.get(host="graph.facebook.com.evil.example").mock(return_value=httpx.Response(200, json={"data": []}))
        items, problems, refused, cursor = collect(facebook.collect_tagged, TAGGED, settings)
    assert route.call_count == 1 and not evil.called
    assert len(items) == 3 and not problems and len(refused) == 1
    assert refused[0].url.startswith("https://graph.facebook.com.evil.example/") and TOKEN not in refused[0].url
    assert cursor == {"since": unix(p1["data"][0]["created_time"])}


def test_a_redirect_off_the_graph_host_does_not_carry_the_token(settings, scheme_token):
    with graph_mock() as router:
        router.get(f"{GRAPH}/{SCHEME_PAGE}/tagged").mock(
            return_value=httpx.Response(302, headers={"location": "https://collector.evil.example/steal"}))
        evil = router.get("https://collector.evil.example/steal").mock(return_value=httpx.Response(200, json={"data": []}))
        collect(facebook.collect_tagged, TAGGED, settings)
    assert "authorization" not in evil.calls[0].request.headers


# -- Facebook: an organisation's own Page ------------------------------------------------------------

def test_an_organisations_page_is_read_with_its_own_token(settings, monkeypatch):
    monkeypatch.setenv("META_PAGE_TOKEN_GREENFIELD_PRIMARY", TOKEN)
    monkeypatch.delenv("META_PAGE_TOKEN", raising=False)
    spec = SourceSpec("greenfield-primary", "facebook", "https://www.facebook.com/greenfieldprimary/")
    p1, p2 = fixture("facebook", "page-posts-p1.json"), fixture("facebook", "page-posts-p2-last.json")
    with graph_mock() as router:
        first = router.get(f"{GRAPH}/greenfieldprimary/posts").mock(return_value=httpx.Response(200, json=p1))
        # Graph's paging links name the Page by its id, whatever name it was asked by
        then = router.get(f"{GRAPH}/100064512345678/posts").mock(return_value=httpx.Response(200, json=p2))
        items, _, _, cursor = collect(facebook.collect, spec, settings)
    assert first.call_count == then.call_count == 1 and then.calls[0].request.url.params["until"] == "1794643510"
    assert all(c.request.headers["authorization"] == f"Bearer {TOKEN}" for c in first.calls + then.calls)
    assert [i.org_id for i in items] == ["greenfield-primary"] * 4
    assert [i.tags_scheme for i in items] == [True, True, False, True]  # by text, or by tagging the scheme Page's id
    assert cursor == {"since": unix(p1["data"][0]["created_time"])}


@pytest.mark.parametrize("locator, ref", [
    ("https://www.facebook.com/greenfieldprimary", "greenfieldprimary"),
    ("https://m.facebook.com/greenfieldprimary/?ref=bookmarks", "greenfieldprimary"),
    ("100064512345678", "100064512345678"),
    ("https://www.facebook.com/profile.php?id=100064512345678", "100064512345678"),
    ("https://www.facebook.com/p/Greenfield-Primary-School-100064512345678/", "100064512345678"),
    ("https://www.facebook.com/groups/greenfieldparents", None),
    ("https://example.org/greenfield", None),
    ("../../me/accounts", None),
])
def test_page_locators(locator, ref):
    assert facebook.page_ref(locator) == ref


def test_message_tags_of_the_scheme_page_mark_a_post_as_tagging_the_scheme():
    post = {"id": "1_2", "message": "Thanks Cultural Cohesion QM!", "created_time": "2026-11-01T10:00:00+0000",
            "message_tags": [{"id": SCHEME_PAGE, "name": "Cultural Cohesion QM", "type": "page", "offset": 7, "length": 20}]}
    assert facebook.parse_post(post, org_id="o", source_id="s", fetched_at=NOW, scheme_page_id=SCHEME_PAGE).tags_scheme
    assert not facebook.parse_post(post, org_id="o", source_id="s", fetched_at=NOW).tags_scheme
    assert facebook.parse_post(post, org_id="o", source_id="s", fetched_at=NOW).url == "https://www.facebook.com/1/posts/2"


# -- Instagram ---------------------------------------------------------------------------------------

def test_instagram_tags_page_to_the_last_page(settings, scheme_token):
    p1, p2 = fixture("instagram", "ig-user-tags-p1.json"), fixture("instagram", "ig-user-tags-p2-last.json")
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(
            side_effect=[httpx.Response(200, json=p1), httpx.Response(200, json=p2)])
        items, problems, _, cursor = collect(instagram.collect_tags, IG_TAGS, settings)
    assert route.call_count == 2 and not problems
    assert route.calls[1].request.url.params["after"] == p1["paging"]["cursors"]["after"]
    assert all("access_token" not in str(c.request.url) and c.request.headers["authorization"] == f"Bearer {TOKEN}"
               for c in route.calls)
    assert [i.native_id for i in items] == [m["id"] for m in p1["data"] + p2["data"]]
    assert all(i.platform == "instagram" and i.tags_scheme for i in items)  # photo-tagged: tags the scheme
    assert (items[0].author, items[0].author_id, items[0].url) == ("greenfieldprimary", None, p1["data"][0]["permalink"])
    assert items[-1].text == ""  # a photo with no caption is still a post
    assert cursor == {"tags": {"since": unix(p1["data"][0]["timestamp"])}}


def test_instagram_tags_second_run_stops_after_a_page_with_nothing_new(settings, scheme_token):
    p1 = fixture("instagram", "ig-user-tags-p1.json")
    cursor = {"tags": {"since": unix(p1["data"][0]["timestamp"]) + 60}}
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(return_value=httpx.Response(200, json=p1))
        items, _, _, cursor2 = collect(instagram.collect_tags, IG_TAGS, settings, cursor=cursor)
    assert route.call_count == 1 and cursor2 == cursor  # photo tags are not in time order: the page is kept
    assert len(items) == 3


def test_instagram_hashtag_media_and_tags_yield_the_same_media_once(settings, scheme_token):
    settings = with_hashtags(settings)
    tags = fixture("instagram", "ig-user-tags-p2-last.json")
    tags["data"] = fixture("instagram", "ig-user-tags-p1.json")["data"]
    recent = fixture("instagram", "ig-hashtag-recent-media-p1.json")
    shared = {m["id"] for m in tags["data"]} & {m["id"] for m in recent["data"]}
    assert shared, "the fixtures hold one media both tagged and hashtagged"
    with graph_mock() as router:
        router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(return_value=httpx.Response(200, json=tags))
        search = router.get(f"{GRAPH}/ig_hashtag_search").mock(
            return_value=httpx.Response(200, json=fixture("instagram", "ig-hashtag-search.json")))
        media = router.get(f"{GRAPH}/{HASHTAG_ID}/recent_media").mock(
            side_effect=[httpx.Response(200, json=recent), httpx.Response(200, json={"data": []})])
        before = int(time.time())
        items, problems, _, cursor = collect(instagram.collect_tags, IG_TAGS, settings)
    assert not problems
    assert dict(search.calls[0].request.url.params) == {"user_id": IG_SCHEME, "q": "iccqm"}
    assert media.calls[0].request.url.params["user_id"] == IG_SCHEME
    assert "username" not in media.calls[0].request.url.params["fields"]  # hashtag media cannot give it
    ids = [i.native_id for i in items]
    assert len(ids) == len(set(ids)) == len({m["id"] for m in tags["data"] + recent["data"]})
    hashtag_only = next(i for i in items if i.native_id == recent["data"][0]["id"])
    assert hashtag_only.author is None and hashtag_only.author_id is None and hashtag_only.tags_scheme
    assert cursor["hashtags"] == {"iccqm": {"id": HASHTAG_ID, "since": unix(recent["data"][0]["timestamp"])}}
    assert before <= cursor["hashtag_searches"]["iccqm"] <= int(time.time())

    with graph_mock() as router:  # the hashtag's id is kept: no search spent on the next run
        router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(return_value=httpx.Response(200, json={"data": []}))
        search = router.get(f"{GRAPH}/ig_hashtag_search").mock(return_value=httpx.Response(500))
        router.get(f"{GRAPH}/{HASHTAG_ID}/recent_media").mock(return_value=httpx.Response(200, json={"data": []}))
        _, problems, _, cursor2 = collect(instagram.collect_tags, IG_TAGS, settings, cursor=cursor)
    assert not search.called and not problems and cursor2["hashtags"] == cursor["hashtags"]


def test_instagram_hashtag_search_never_passes_30_unique_hashtags_in_7_days(settings, scheme_token):
    settings = with_hashtags(settings, tags=("iCCQM", "CulturalCohesion", "#OneCommunity"))
    now = int(time.time())
    searched = {f"tag{n}": now - 3600 * n for n in range(28)}  # 28 in the window ...
    searched["old"] = now - 8 * 24 * 3600  # ... and one that has left it
    with graph_mock() as router:
        router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(return_value=httpx.Response(200, json={"data": []}))
        search = router.get(f"{GRAPH}/ig_hashtag_search").mock(side_effect=lambda request: httpx.Response(
            200, json={"data": [{"id": f"1784{abs(hash(request.url.params['q'])) % 10**10}", "name": request.url.params["q"]}]}))
        router.get(url__regex=rf"{GRAPH}/\d+/recent_media").mock(return_value=httpx.Response(200, json={"data": []}))
        items, problems, _, cursor = collect(instagram.collect_tags, IG_TAGS, settings,
                                             cursor={"hashtag_searches": searched})
    assert [c.request.url.params["q"] for c in search.calls] == ["iccqm", "culturalcohesion"]
    assert len(problems) == 1 and isinstance(problems[0].error, DeferredError)
    assert "30 unique hashtag searches per account in 7 days" in str(problems[0].error)
    assert "#onecommunity waits until" in str(problems[0].error)
    assert "old" not in cursor["hashtag_searches"] and len(cursor["hashtag_searches"]) == 30
    assert set(cursor["hashtags"]) == {"iccqm", "culturalcohesion"}


def test_instagram_throttling_stops_cleanly_before_the_hashtags(settings, scheme_token):
    settings = with_hashtags(settings)
    p1 = fixture("instagram", "ig-user-tags-p1.json")
    with graph_mock() as router:
        router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(
            side_effect=[httpx.Response(200, json=p1), graph_error("instagram", "error-throttled-code80002.json")])
        search = router.get(f"{GRAPH}/ig_hashtag_search")
        items, problems, _, cursor = collect(instagram.collect_tags, IG_TAGS, settings)
    assert len(items) == 3 and not search.called
    assert "Instagram throttled this app (code 80002)" in str(problems[0].error)
    assert cursor == {"tags": {"resume": {"next": facebook.without_token(p1["paging"]["next"]),
                                          "newest": unix(p1["data"][0]["timestamp"])}}}


def test_instagram_hashtag_search_without_the_feature_names_it(settings, scheme_token):
    settings = with_hashtags(settings)
    with graph_mock() as router:
        router.get(f"{GRAPH}/{IG_SCHEME}/tags").mock(return_value=httpx.Response(200, json={"data": []}))
        router.get(f"{GRAPH}/ig_hashtag_search").mock(return_value=graph_error("instagram", "error-hashtag-feature-code10.json"))
        with pytest.raises(CollectorError, match="META_PAGE_TOKEN needs 'Instagram Public Content Access'") as caught:
            collect(instagram.collect_tags, IG_TAGS, settings)
    assert TOKEN not in str(caught.value) and "\n" not in str(caught.value)


def test_instagram_own_media_needs_a_numeric_id_and_its_own_token(settings, monkeypatch):
    monkeypatch.setenv("META_PAGE_TOKEN_GREENFIELD_PRIMARY", TOKEN)
    with pytest.raises(NotConnected, match="numeric Instagram user id"):
        collect(instagram.collect, SourceSpec("greenfield-primary", "instagram", "@greenfieldprimary"), settings)
    spec = SourceSpec("greenfield-primary", "instagram", IG_GREENFIELD)
    p1, p2 = fixture("instagram", "ig-user-media-p1.json"), fixture("instagram", "ig-user-media-p2-last.json")
    with graph_mock() as router:
        route = router.get(f"{GRAPH}/{IG_GREENFIELD}/media").mock(
            side_effect=[httpx.Response(200, json=p1), httpx.Response(200, json=p2)])
        items, _, _, cursor = collect(instagram.collect, spec, settings)
    assert route.call_count == 2 and len(items) == 3
    assert {(i.author, i.author_id) for i in items} == {("greenfieldprimary", IG_GREENFIELD)}
    assert [i.tags_scheme for i in items] == [True, True, False]
    assert cursor == {"since": unix(p1["data"][0]["timestamp"])}
    with graph_mock() as router:  # next run: stops at the first media it already has
        route = router.get(f"{GRAPH}/{IG_GREENFIELD}/media").mock(return_value=httpx.Response(200, json=p1))
        items, _, _, cursor2 = collect(instagram.collect, spec, settings, cursor=cursor)
    assert route.call_count == 1 and [i.native_id for i in items] == [p1["data"][0]["id"]] and cursor2 == cursor


# -- the real answers in ../shared/samples -----------------------------------------------------------

def test_real_graph_samples_parse():
    for name in ("page-feed-p1.json", "page-feed-p2-last.json", "page-posts-minimal-p1.json"):
        page = sample("facebook", name)
        items = [facebook.parse_post(p, org_id="o", source_id="o/facebook/x", fetched_at=NOW) for p in page["data"]]
        assert all(i.native_id and i.url.startswith("https://www.facebook.com/") and i.published.tzinfo for i in items)
        assert all(i.author is None for i in items)  # `from` was not asked for in these calls
        if "next" in page["paging"]:
            assert facebook.same_host(page["paging"]["next"], GRAPH)
            assert "access_token" not in facebook.without_token(page["paging"]["next"])
    feed = sample("facebook", "page-feed-p1.json")
    peering = facebook.parse_post(feed["data"][1], org_id="o", source_id="s", fetched_at=NOW)
    assert peering.text.startswith(feed["data"][1]["message"]) and "automated peering method" in peering.text
    for name, needs in (("error-missing-ppca-permission.json", "'pages_read_engagement' or 'Page Public Content Access'"),
                        ("error-ppca-needs-appsecret-proof.json", "requires either app secret proof")):
        error = facebook.graph_error(json.dumps(sample("facebook", name)).encode())
        line = facebook.explain(error, token=TOKEN, variable="META_PAGE_TOKEN", label="Facebook")
        assert needs in line and "Graph error 100" in line and "Refer to" not in line

    for name in ("ig-user-tags.json", "ig-user-media-p1.json", "ig-user-media-p2.json",
                 "ig-hashtag-top-media-p1.json", "ig-hashtag-recent-media-p1.json"):
        page = sample("instagram", name)
        items = [instagram.parse_media(m, org_id="o", source_id="s", fetched_at=NOW) for m in page["data"]]
        assert all(i.native_id and i.platform == "instagram" for i in items)
        assert all(i.url is None or i.url.startswith("https://www.instagram.com/p/") for i in items)
    top = sample("instagram", "ig-hashtag-top-media-p1.json")["data"][0]
    item = instagram.parse_media(top, org_id="o", source_id="s", fetched_at=NOW)
    assert item.author is None and item.published is None and item.text == top["caption"]
    mentioned = sample("instagram", "ig-user-mentioned-media.json")["mentioned_media"]
    item = instagram.parse_media(mentioned, org_id="o", source_id="s", fetched_at=NOW)
    assert item.text == "@ikroskun hey" and item.published == dt.datetime(2021, 8, 19, 9, 0, 22, tzinfo=dt.timezone.utc)
    assert sample("instagram", "ig-hashtag-search.json")["data"][0]["id"].isdigit()
