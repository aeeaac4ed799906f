"""The demo world's Facebook, Instagram and X: served through the platforms' own API shapes, their
@iCCQM mentions credited to the registered organisations that wrote them, an unknown account's
mentions waiting for a validator on the index, and no token needed to run the demo."""

from __future__ import annotations

import os

import httpx
import pytest
from lxml import html

from harvester.config.registry import SCHEME
from harvester.demo import CONFIG, render_config
from harvester.demo.server import DEMO_TOKEN, World
from harvester.items import item_id
from harvester.store.db import open_store
from tests.conftest import PROJECT

NEW_PLATFORMS = {"facebook", "instagram", "x"}
# Collector keys of every source, the organisations' and the scheme's, on the new platforms.
NEW_SOURCES = NEW_PLATFORMS | {"facebook-tagged", "instagram-tags", "x-mentions", "x-search"}
# Posts of registered organisations that the scheme's own sources reach: a Facebook post that tags
# the iCCQM Page, Instagram media that tag @iccqm, X posts that mention @iCCQM (world/graph, world/x).
MENTIONS = [
    ("facebook", "100083412765091_122198734561209876", "riverside-larder"),
    ("facebook", "100070455512346_1029384756102938", "castlegate-logistics"),
    ("instagram", "17998213456012345", "greenfield-primary"),
    ("instagram", "18063328190442107", "riverside-larder"),
    ("x", "2123781406850166785", "castlegate-logistics"),
    ("x", "2111119977479286785", "greenfield-primary"),
]
UNKNOWN = {("x", "HollybankCC"), ("facebook", "Northbridge Interfaith Forum")}


def test_the_dossiers_carry_items_from_at_least_six_platforms(harvested):
    with open_store(harvested.settings.db_path, read_only=True) as store:
        platforms = {r[0] for r in store.con.execute(
            "SELECT DISTINCT i.platform FROM attributions a JOIN items i ON i.id = a.item_id WHERE a.org_id <> ?",
            [SCHEME]).fetchall()}
    assert len(platforms) >= 6 and NEW_PLATFORMS <= platforms, platforms
    shown = set()  # and the dossiers' evidence tables show them
    for org in harvested.settings.organisations:
        page = html.fromstring((harvested.settings.dossier_dir / f"{org.id}.html").read_text(encoding="utf-8"))
        shown |= {row.xpath("./td")[2].text_content().strip() for row in page.xpath('//tr[starts-with(@id, "item-")]')}
    assert len(shown) >= 6 and NEW_PLATFORMS <= shown, shown


@pytest.mark.parametrize("platform, native_id, org_id", MENTIONS)
def test_a_registered_organisations_mention_is_credited_to_it(harvested, platform, native_id, org_id):
    key = item_id(platform, native_id)
    with open_store(harvested.settings.db_path, read_only=True) as store:
        row = store.con.execute("SELECT tags_scheme FROM items WHERE id = ?", [key]).fetchone()
        assert row is not None, f"{platform} {native_id} was not harvested"
        assert row[0], "the post tags the scheme"
        assert org_id in [org for org, _ in store.attributions(key)]
        assert key not in {r["id"] for r in store.unattributed()}
    dossier = (harvested.settings.dossier_dir / f"{org_id}.html").read_text(encoding="utf-8")
    assert f'id="item-{key}"' in dossier


def test_the_scheme_sources_read_every_mention_on_the_new_platforms(harvested):
    outcomes = {o.source.platform: o for o in harvested.result.report.outcomes if o.source.org_id == SCHEME}
    read = {k: sum(o.counts.get(n, 0) for n in ("new", "changed", "unchanged")) for k, o in outcomes.items()}
    # 4 Facebook posts tag the Page; 3 media tag @iccqm; 5 posts mention @iCCQM (a retweet too, which
    # is not kept); 7 match (@iCCQM OR #iCCQM) -is:retweet.
    assert {k: read[k] for k in ("facebook-tagged", "instagram-tags", "x-mentions", "x-search")} == \
        {"facebook-tagged": 4, "instagram-tags": 3, "x-mentions": 5, "x-search": 7}


def test_an_unknown_accounts_mentions_wait_unattributed_and_are_listed_on_the_index(harvested):
    with open_store(harvested.settings.db_path, read_only=True) as store:
        waiting = store.unattributed()
    on_new = [r for r in waiting if r["platform"] in NEW_PLATFORMS]
    assert {(r["platform"], r["author"]) for r in on_new} == UNKNOWN  # no registered organisation's post
    assert len(on_new) == 2  # Hollybank's retweet of Greenfield is someone else's words: not kept
    index = html.fromstring((harvested.settings.dossier_dir / "index.html").read_text(encoding="utf-8"))
    rows = index.xpath('//section[@aria-labelledby="unattributed"]//tbody/tr')
    listed = {(r.xpath("./td")[1].text_content().strip(), r.xpath("./td")[2].text_content().strip()) for r in rows}
    assert UNKNOWN <= listed
    assert len(rows) == len(waiting)


def test_the_demo_needs_no_token(harvested):
    new = [o for o in harvested.result.report.outcomes if o.source.platform in NEW_SOURCES]
    assert {o.source.platform for o in new} == NEW_SOURCES
    assert [(o.source.id, o.status, o.errors) for o in new if o.status != "ok"] == []


def test_the_world_lends_placeholder_tokens_only_while_it_runs_and_keeps_the_users_own(monkeypatch):
    mine, unset = "META_PAGE_TOKEN_DEMO_PLATFORMS_MINE", "META_PAGE_TOKEN_DEMO_PLATFORMS_UNSET"
    monkeypatch.setenv(mine, "the-users-own-token")
    monkeypatch.delenv(unset, raising=False)
    with World() as world:
        world.lend_env([mine, unset])
        assert os.environ[mine] == "the-users-own-token" and os.environ[unset] == DEMO_TOKEN
        del os.environ[unset]  # taken away meanwhile (a test's delenv): another demo world lends it again
        with World() as inner:  # worlds may overlap: the token stays until the last one closes
            inner.lend_env([unset])
            assert os.environ[unset] == DEMO_TOKEN
        assert os.environ[unset] == DEMO_TOKEN
    assert unset not in os.environ and os.environ[mine] == "the-users-own-token"


def test_rendering_the_demo_config_lends_every_token_its_sources_read(world, tmp_path):
    render_config(CONFIG, tmp_path / "config", world, PROJECT / "config" / "rubric.toml")
    for org in ("GREENFIELD_PRIMARY", "CASTLEGATE_LOGISTICS", "RIVERSIDE_LARDER"):
        assert os.environ.get(f"META_PAGE_TOKEN_{org}", "").strip()
    assert os.environ.get("META_PAGE_TOKEN", "").strip() and os.environ.get("X_BEARER_TOKEN", "").strip()


@pytest.mark.parametrize("api, path", [("graph", "/108451237750213/tagged"), ("graph", "/17841465012345678/tags"),
                                       ("x", "/2/users/1851774417532510208/mentions?max_results=5")])
def test_the_world_refuses_a_request_without_a_token_in_the_platforms_words(world, api, path):
    answer = httpx.get(getattr(world, api) + path)
    assert answer.status_code == 401
    body = answer.json()
    if api == "graph":
        assert body["error"]["type"] == "OAuthException" and body["error"]["code"] == 104
    else:
        assert body["title"] == "Unauthorized" and body["status"] == 401


def test_the_world_pages_like_the_platforms(world):
    auth = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    first = httpx.get(f"{world.graph}/v21.0/108451237750213/tagged", params={"limit": 100, "fields": "id,from"},
                      headers=auth).json()
    after = httpx.get(first["paging"]["next"], headers=auth).json()
    assert first["paging"]["next"].startswith(world.graph + "/v21.0/")  # on the same origin, same version
    assert len(first["data"]) + len(after["data"]) == 4 and "next" not in after["paging"]
    mentions = f"{world.x}/2/users/1851774417532510208/mentions"
    page = httpx.get(mentions, params={"max_results": 100}, headers=auth)
    assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(page.headers)
    rest = httpx.get(mentions, params={"max_results": 100, "pagination_token": page.json()["meta"]["next_token"]},
                     headers=auth).json()
    ids = [t["id"] for t in page.json()["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) == 6 and "next_token" not in rest["meta"]
    newer = httpx.get(mentions, params={"max_results": 100, "since_id": ids[1]}, headers=auth).json()
    assert [t["id"] for t in newer["data"]] == ids[:1]
